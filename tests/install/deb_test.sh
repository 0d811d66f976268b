#!/usr/bin/env bash
# The Debian package: build it with `cpack -G DEB` from a tree configured
# for /usr, and check what dpkg-deb sees in it (files, conffiles, control
# fields, maintainer scripts). As root with VIGIL_TEST_DEB_INSTALL=1 (CI),
# also install it for real, use it, and remove and purge it:
#   - vigil --version, vigil check of the installed rules and config,
#     systemd-analyze verify of the installed unit, man finds the pages;
#   - an edited conffile survives a reinstall and a remove; purge deletes it.
# Usage: deb_test.sh SOURCE_DIR WORK_DIR   (WORK_DIR keeps the /usr build,
# so a second run only rebuilds what changed)
set -uo pipefail
src=$1
work=$2
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...: passes when the command succeeds
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}

# CPack's DEB generator finds the ELF files for dpkg-shlibdeps with file(1).
for tool in cmake cpack dpkg-deb dpkg-shlibdeps file; do
    if ! command -v "$tool" >/dev/null; then
        case $tool in
        dpkg-shlibdeps) pkg=dpkg-dev ;;
        cpack) pkg=cmake ;;
        *) pkg=$tool ;;
        esac
        echo "SKIP: $tool not found (apt-get install $pkg)"
        exit 77
    fi
done

# ---- build ----------------------------------------------------------------
build=$work/build
mkdir -p "$build"
if ! cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DVIGIL_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/configure.log" 2>&1; then
    cat "$work/configure.log"
    echo "FAIL: configure"
    exit 1
fi
if ! cmake --build "$build" -j"${VIGIL_BUILD_JOBS:-2}" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    echo "FAIL: build"
    exit 1
fi
rm -f "$build"/vigil_*.deb
if ! (cd "$build" && cpack -G DEB) >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log"
    echo "FAIL: cpack -G DEB"
    exit 1
fi
debs=("$build"/vigil_*.deb)
if [ ! -f "${debs[0]}" ] || [ ${#debs[@]} -ne 1 ]; then
    echo "FAIL: expected one vigil_*.deb in $build, found: ${debs[*]}"
    exit 1
fi
deb=${debs[0]}
echo "built $deb ($(stat -c %s "$deb") bytes)"
version=$("$build/vigil" --version | awk '{print $2}')

# ---- what is in it ----------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
check "Package is vigil" test "$(field Package)" = vigil
check "Version $(field Version) is the project's $version" test "$(field Version)" = "$version"
check "Architecture is $(dpkg --print-architecture)" \
    test "$(field Architecture)" = "$(dpkg --print-architecture)"
check "Maintainer is set" test -n "$(field Maintainer)"
depends=$(field Depends)
echo "Depends: $depends"
# dpkg-shlibdeps found the libraries the binary links.
for lib in librdkafka 'lib(vectorscan|hyperscan)' libyaml libjson-c libsystemd libmicrohttpd \
    libc6; do
    check "Depends names $lib" grep -qE "$lib" <<<"$depends"
done

contents=$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}')
has() { # has MODE-PREFIX PATH
    grep -q "^$1[^ ]* root/root \./$2\$" <<<"$contents"
}
check "/usr/bin/vigil, executable, root-owned" has -rwxr-xr-x usr/bin/vigil
if has -rw-r--r-- usr/lib/systemd/system/vigil.service || has -rw-r--r-- lib/systemd/system/vigil.service; then
    ok
else
    bad "no vigil.service in /usr/lib/systemd/system or /lib/systemd/system"
fi
check "/etc/vigil/vigil.yaml" has -rw-r--r-- etc/vigil/vigil.yaml
for f in "$src"/rules/*.yaml "$src"/rules/lists/*.txt; do
    rel=${f#"$src"/rules/}
    check "/etc/vigil/rules.d/$rel" has -rw-r--r-- "etc/vigil/rules.d/$rel"
done
check "no demo files in rules.d" test -z "$(grep 'rules.d/demo' <<<"$contents")"
check "vigil.8 in man8" has -rw-r--r-- usr/share/man/man8/vigil.8.gz
check "vigil-rules.5 in man5" has -rw-r--r-- usr/share/man/man5/vigil-rules.5.gz
check "README in the doc folder" has -rw-r--r-- usr/share/doc/vigil/README.md
check "rules.md in the doc folder" has -rw-r--r-- usr/share/doc/vigil/rules.md
check "nothing under /usr/local" test -z "$(grep '\./usr/local' <<<"$contents")"

ctl=$(mktemp -d)
trap 'rm -rf "$ctl"' EXIT
dpkg-deb -e "$deb" "$ctl/DEBIAN"
# Every file under /etc is a conffile, and nothing else is.
etc_files=$(grep -o '\./etc/.*[^/]$' <<<"$contents" | sed 's/^\.//' | sort)
conffiles=$(sort "$ctl/DEBIAN/conffiles" 2>/dev/null)
check "conffiles are exactly the files under /etc" test "$etc_files" = "$conffiles"
for script in postinst prerm postrm; do
    check "$script is there and executable" test -x "$ctl/DEBIAN/$script"
    check "$script passes sh -n" sh -n "$ctl/DEBIAN/$script"
done
# The unit runs as a DynamicUser: no account for postinst to create.
check "the unit uses DynamicUser" grep -q '^DynamicUser=yes' "$src/systemd/vigil.service"

# The extracted binary runs (its libraries are the build host's).
dpkg-deb -x "$deb" "$ctl/root"
check "extracted vigil --version" test "$("$ctl/root/usr/bin/vigil" --version)" = "vigil $version"
check "extracted rules check" "$ctl/root/usr/bin/vigil" check --quiet "$ctl/root/etc/vigil/rules.d"

# ---- install, use, remove, purge (root, VIGIL_TEST_DEB_INSTALL=1) ------------
if [ "${VIGIL_TEST_DEB_INSTALL:-0}" != 1 ] || [ "$(id -u)" != 0 ]; then
    echo "install steps skipped (they need root and VIGIL_TEST_DEB_INSTALL=1)"
elif dpkg -s vigil >/dev/null 2>&1; then
    bad "a vigil package is already installed here; not touching it (dpkg -P vigil first)"
else
    trap 'dpkg -P vigil >/dev/null 2>&1; rm -rf "$ctl"' EXIT
    if command -v apt-get >/dev/null; then
        # apt-get pulls in what Depends names; quiet unless it fails.
        out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$deb" 2>&1)
    else
        out=$(dpkg -i "$deb" 2>&1)
    fi
    if [ $? -ne 0 ]; then
        echo "$out"
        bad "installing the package"
    else
        ok
    fi
    check "dpkg says installed" test "$(dpkg-query -W -f '${Status}' vigil)" = "install ok installed"
    check "vigil on PATH is /usr/bin/vigil" test "$(command -v vigil)" = /usr/bin/vigil
    check "vigil --version" test "$(vigil --version)" = "vigil $version"
    check "vigil check /etc/vigil/rules.d" vigil check --quiet /etc/vigil/rules.d
    check "vigil check --config /etc/vigil/vigil.yaml" vigil check --quiet --config /etc/vigil/vigil.yaml
    unit=$(dpkg -L vigil | grep '/systemd/system/vigil.service$')
    check "the unit is installed" test -f "$unit"
    if command -v systemd-analyze >/dev/null; then
        out=$(systemd-analyze verify "$unit" 2>&1)
        if [ $? -eq 0 ] && [ -z "$out" ]; then ok; else bad "systemd-analyze verify $unit: $out"; fi
    else
        echo "systemd-analyze not found: unit verification skipped"
    fi
    if command -v man >/dev/null; then
        check "man -w vigil" test "$(man -w 8 vigil 2>/dev/null)" = /usr/share/man/man8/vigil.8.gz
        check "man -w vigil-rules" test "$(man -w 5 vigil-rules 2>/dev/null)" = \
            /usr/share/man/man5/vigil-rules.5.gz
    fi
    # An administrator's edit of a conffile is kept by a reinstall...
    echo "# edited by deb_test" >>/etc/vigil/vigil.yaml
    out=$(dpkg -i "$deb" 2>&1) || { echo "$out"; bad "reinstalling"; }
    check "edited vigil.yaml kept over a reinstall" grep -q 'edited by deb_test' /etc/vigil/vigil.yaml
    # ... and by a remove, which takes everything else away ...
    out=$(dpkg -r vigil 2>&1) || { echo "$out"; bad "dpkg -r vigil"; }
    check "removed: status config-files" \
        test "$(dpkg-query -W -f '${Status}' vigil 2>/dev/null)" = "deinstall ok config-files"
    check "removed: /usr/bin/vigil gone" test ! -e /usr/bin/vigil
    check "removed: unit gone" test ! -e "$unit"
    check "removed: man page gone" test ! -e /usr/share/man/man8/vigil.8.gz
    check "removed: /usr/share/doc/vigil gone" test ! -e /usr/share/doc/vigil
    check "removed: vigil.yaml kept" grep -q 'edited by deb_test' /etc/vigil/vigil.yaml
    check "removed: rule packs kept" test -f /etc/vigil/rules.d/export-controls.yaml
    # ... and purge deletes the conffiles and /etc/vigil.
    out=$(dpkg -P vigil 2>&1) || { echo "$out"; bad "dpkg -P vigil"; }
    check "purged: dpkg knows nothing of vigil" test -z "$(dpkg-query -W -f '${Status}' vigil 2>/dev/null)"
    check "purged: /etc/vigil gone" test ! -e /etc/vigil
    trap 'rm -rf "$ctl"' EXIT
fi

echo "deb package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
