#!/bin/sh
# The README's example under valgrind with every leak kind shown: with
# vmmem_default_registry_release() at its end it frees everything (issue 17).
# Usage (after `scons`): sh tests/valgrind-readme.sh [build/release]
set -eu
b=${1:-build/release}
VMMEM_PLUGIN_PATH=$(cd "$b/plugins" && pwd) valgrind -q --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all --error-exitcode=1 "$b/examples/readme_example"
