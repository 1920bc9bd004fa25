/*
 * group_maps.c - the steps the group-mapping routes of directories and OIDC providers share.
 */
#include "group_maps.h"

struct map_ctx {
    bic_req *req;
    const bic_group_map_source *s;
    long long id, map_id;
};

bic_err group_maps_list(bic_req *req, bic_resp *resp, const bic_group_map_source *s)
{
    long long id;
    bic_rows src, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = s->load(req, req->db, s->get, id, &src);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, s->list, &rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "group mapping list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++)
        json_array_append_new(items, s->item(req, &rows, i));
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

static bic_err add_tx(bic_db *db, void *arg)
{
    struct map_ctx *c = arg;
    bic_rows src;
    bic_err e = c->s->load(c->req, db, c->s->get_for_update, c->id, &src);
    if (e != BIC_E_OK) return e;
    return c->s->add(c->req, db, c->id, &src, &c->map_id);
}

bic_err group_maps_add(bic_req *req, bic_resp *resp, const bic_group_map_source *s)
{
    struct map_ctx c = {req, s, 0, 0};
    bic_rows rows;
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK && s->check) e = s->check(req);
    if (e == BIC_E_OK) e = db_tx(req->db, add_tx, &c);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, s->map_get, &rows, P_INT(c.map_id), P_INT(c.id));
    if (e != BIC_E_OK) return fail(req, e, "group mapping lookup failed");
    if (rows.nrows != 1) return fail(req, s->gone, "the mapping was removed meanwhile");
    resp_header(req, resp, "Location: %s/%lld/group-maps/%lld", s->path, c.id, c.map_id);
    resp_json(req, resp, 201, s->item(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err remove_tx(bic_db *db, void *arg)
{
    struct map_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows src, m;
    bic_err e = BIC_E_OK;
    if (c->s->lock_to_remove) e = c->s->load(req, db, c->s->get_for_update, c->id, &src);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, c->s->map_get, &m, P_INT(c->map_id), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "group mapping lookup failed");
    if (m.nrows != 1)
        return fail(req, BIC_E_NOT_FOUND, "%s %lld has no group mapping %lld", c->s->noun, c->id,
                    c->map_id);
    return c->s->remove(req, db, c->id, c->s->lock_to_remove ? &src : NULL, &m);
}

bic_err group_maps_remove(bic_req *req, bic_resp *resp, const bic_group_map_source *s)
{
    struct map_ctx c = {req, s, 0, 0};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = param_id(req, 1, &c.map_id);
    if (e == BIC_E_OK) e = db_tx(req->db, remove_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}
