#!/bin/sh
# Static checks run by `make test`: banned functions, no printing or exiting in
# core/, clang-format conformance, and cppcheck.
set -eu
cd "$(dirname "$0")/.."
status=0

# Unbounded or unchecked string functions.
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol)[[:space:]]*\(' \
        core/*.[ch] cmd/blast/*.[ch]; then
    echo "lint: banned function (use snprintf, buffers with lengths, strtol)" >&2
    status=1
fi

# core/ returns errors; only cmd/ prints or exits.
if grep -nE '(^|[^_a-z])(exit|abort|printf|puts)[[:space:]]*\(|\b(stdout|stderr)\b' core/*.c; then
    echo "lint: core/ must not print or exit; return an error instead" >&2
    status=1
fi

if command -v clang-format >/dev/null 2>&1; then
    for f in core/*.[ch] cmd/blast/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]; do
        [ -e "$f" ] || continue
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "lint: $f is not clang-formatted (make format)" >&2
            status=1
        fi
    done
fi

if command -v cppcheck >/dev/null 2>&1; then
    if ! cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
            --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE \
            core cmd 2>&1; then
        echo "lint: cppcheck found problems" >&2
        status=1
    fi
fi
exit $status
