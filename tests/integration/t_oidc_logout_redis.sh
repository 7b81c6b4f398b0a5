#!/usr/bin/env bash
# t_oidc_logout_redis.sh - t_oidc_logout.sh with the provider's state in
# Redis (REDIS=1), so that `make test` runs the back-channel logout across
# a shared store, and checks that none of the provider's store round trips
# waited on a worker loop (oidc_loop_waits_check).
REDIS=1 exec bash "$(dirname "$0")/t_oidc_logout.sh"
