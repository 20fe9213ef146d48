/* The vhost-user protocol side of vmmem-vhost-user-blk (vu.c). */
#ifndef VUBLK_VU_H
#define VUBLK_VU_H

#include "blk.h"

struct vu_options {
    bool no_mem_slots;     /* refuse CONFIGURE_MEM_SLOTS: SET_MEM_TABLE only */
    bool skip_log_marking; /* test switch: accept SET_LOG_BASE, never mark it */
    bool ro_silent;        /* read-only without VIRTIO_BLK_F_RO (test switch) */
    int verbose;
};

struct vu {
    struct dev *d;
    struct vu_options opt;
    int conn;
    uint64_t features, protocol;
    bool log_attached, saw_log_base, saw_log_all;
    uint64_t messages, errors;
    struct msg {
        uint32_t request, flags, size;
        uint8_t payload[4096];
        int fds[8];
        size_t nfds;
    } msg;
};

uint64_t vu_features(const struct vu *u);
void vu_reset(struct vu *u);
void vu_process_all(struct vu *u);
int vu_dispatch(struct vu *u);
int vu_serve(struct vu *u, int conn);
void vu_install_signals(void);
bool vu_stopping(void);

#endif
