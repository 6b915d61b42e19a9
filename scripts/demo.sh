#!/usr/bin/env bash
# The main job on the bundled sample, offline: see README.md.
source "$(dirname "$0")/env.sh" ""
exec volcast demo "$@"
