/*
 * catalog.h - golden images, versions, per-server replicas and specs.
 *
 * h_catalog.c answers the API (images, versions, specs, capture, and the two agent
 * routes that move image files); catalog.c is what the leader runs: the replica of a
 * version on a server (image.fetch tasks) and the outcome of fetch and capture tasks.
 * Image files live in [catalog] image_store; nginx writes uploads there and serves
 * downloads from it (see docs/architecture.md, "Catalog").
 */
#ifndef BIC_CATALOG_H
#define BIC_CATALOG_H

#include "arena.h"
#include "db.h"
#include "json.h"

/* nginx's internal location that aliases the image store (X-Accel-Redirect target) */
#define CATALOG_ACCEL_PREFIX "/_bic/images/"
/* attempts of an image.fetch task (the reconciler has no configuration at hand) */
#define CATALOG_FETCH_ATTEMPTS 5
/* a failed replica is fetched again once it is older than this */
#define CATALOG_REFETCH_SECONDS 60

extern const bic_field fields_image_create[], fields_image_update[], fields_version_register[];
extern const bic_field fields_spec_create[], fields_spec_update[], fields_capture[];

/*
 * Inside a db_tx: the state of version_id on server_id. Returns "ready" (*volume = the
 * absolute path of the volume on the server), "fetching", or "failed" (*error = why).
 * When there is no replica row, or a failed one older than CATALOG_REFETCH_SECONDS, it
 * inserts/updates the row (state fetching) and queues an image.fetch task (created_by
 * "reconciler") with params {"version_id", "path": "/api/v1/agent/image-versions/<id>/content",
 * "sha256", "size", "volume": "bic-image-<id>.qcow2"}, and returns "fetching". A version
 * that is not ready (or gone) is "failed" without a row. Strings are copies in a (static
 * strings for the state). Returns NULL when a statement failed (db.c logged it; the caller
 * ends its transaction with an error so that db_tx can retry a deadlock).
 */
const char *catalog_replica(bic_db *db, bic_arena *a, long long version_id, long long server_id,
                            const char **volume, const char **error);

/*
 * Leader tick: applies finished image.fetch tasks (succeeded -> replica ready with
 * result.volume and result.verified once result.sha256 equals the version's; failed ->
 * replica failed with the task's last_error) and finished desktop.capture tasks
 * (succeeded and the file uploaded -> version ready; otherwise failed). Short
 * transactions, each row compare-and-set on its task id: safe to call every tick and
 * from several bicd at once.
 */
void catalog_tick(bic_db *db, bic_arena *a);

#endif
