#!/usr/bin/env bash
# The build-time layering check (cmake/check_layer.cmake) refuses what it
# must and accepts what it must. Each case writes a small source file,
# runs the check as daemon/CMakeLists.txt's libraries do, and looks at the
# exit status and the message.
#
#   tests/layers/layers_test.sh ROOT
set -uo pipefail
root=${1:?usage: layers_test.sh ROOT}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vigil-layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
map="diag.h=base|ruleset.h=engine|state.h=state|log.h=ops|pipeline.h=kafka"

# check NAME LAYER ALLOWED THIRD WANT_STATUS WANT_TEXT SOURCE-LINES...
check() {
    local name=$1 layer=$2 allowed=$3 third=$4 want=$5 text=$6
    shift 6
    printf '%s\n' "$@" > "$tmp/$name.c"
    out=$(cmake -DLAYER="$layer" -DALLOWED="$allowed" -DMAP="$map" -DFILES="$tmp/$name.c" \
        -DTHIRD="$third" -DGUARDED="librdkafka|microhttpd.h|systemd" -DSTAMP="$tmp/$name.stamp" \
        -P "$root/cmake/check_layer.cmake" 2>&1)
    status=$?
    if { [ "$want" = ok ] && [ $status -eq 0 ] && [ -f "$tmp/$name.stamp" ]; } ||
       { [ "$want" = fail ] && [ $status -ne 0 ] && [ ! -f "$tmp/$name.stamp" ] &&
         printf '%s' "$out" | tr -d '\n' | grep -qF -- "$text"; }; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL $name: want $want${text:+ with '$text'}, got status $status:"
        printf '%s\n' "$out" | sed 's/^/    /'
    fi
}

check same_layer engine "engine|base" "" ok "" \
    '#include "vigil/ruleset.h"' '#include "vigil/diag.h"' '#include <stdio.h>'
check lower_layer kafka "kafka|ops|state|engine|base" "librdkafka" ok "" \
    '#include "vigil/state.h"' '#include <librdkafka/rdkafka.h>' 'int a[2]; /* ; [ */'
check higher_layer engine "engine|base" "" fail \
    "$tmp/higher_layer.c:3: \"vigil/pipeline.h\" is a header of daemon/kafka" \
    '/* a comment */' '' '#include "vigil/pipeline.h"'
check ops_from_state state "state|engine|base" "" fail "\"vigil/log.h\" is a header of daemon/ops" \
    '  #  include "vigil/log.h"'
check private_header engine "engine|base" "" fail "another folder's private header" \
    '#include "../state/state_int.h"'
check unknown_header base "base" "" fail "belongs to no layer" '#include "vigil/nothing.h"'
check rdkafka_in_engine engine "engine|base" "" fail "<librdkafka/rdkafka.h> may not be used in daemon/engine" \
    '#include <librdkafka/rdkafka.h>'
check mhd_in_state state "state|engine|base" "" fail "<microhttpd.h> may not be used" \
    '#include <microhttpd.h>'

# (The real tree is checked by every build: daemon/CMakeLists.txt.)

echo "layers: $pass passed, $fail failed"
[ $fail -eq 0 ]
