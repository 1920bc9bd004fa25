#include "session.h"

bic_err session_identify(bic_req *req, bic_resp *resp)
{
    (void)resp;
    req->who.role = ROLE_ANON;
    return BIC_E_OK;
}

bic_err session_check_csrf(bic_req *req)
{
    (void)req;
    return BIC_E_OK;
}
