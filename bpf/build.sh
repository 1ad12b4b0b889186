#!/bin/sh
# Compiles the kernel fast path (bpf/fastpath.bpf.c) into bpf/fastpath.bpf.o, the object the
# proxy embeds. Needs clang and the libbpf headers (Debian: clang, libbpf-dev). The object is
# committed so that building the proxy never needs clang; CI runs this script before building,
# so what it tests is always built from the source.
set -eu
cd "$(dirname "$0")"
arch_include="/usr/include/$(uname -m)-linux-gnu"
clang -O2 -g -target bpf -fdebug-compilation-dir=. -I"$arch_include" \
  -Wall -Werror -c fastpath.bpf.c -o fastpath.bpf.o
