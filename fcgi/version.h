#ifndef BIC_VERSION_H
#define BIC_VERSION_H
#ifndef BIC_VERSION
#define BIC_VERSION "0.1.0"
#endif
#ifndef BIC_GIT_REV
#define BIC_GIT_REV "unknown"
#endif
#endif
