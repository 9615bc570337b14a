#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Run by `make check` in place of the C test programs when configure did
# not find CUnit: the tests cannot run, and that must not pass for green.
echo "CUnit was not found by configure, so the test programs were not built."
echo "Install it (Debian: apt-get install libcunit1-dev) and run configure again."
exit 1
