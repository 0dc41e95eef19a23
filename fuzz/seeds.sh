#!/usr/bin/env bash
# Seeds the fuzz corpora and writes the dictionaries: fuzz/corpus/<target>/ gets real inputs
# (the repository's plans and attrs files, archives made with the system's tar, gzip, bzip2,
# xz, zstd, lzma and zip, patches made by diff and git, states packed by kiln-state, tiny ELF
# files compiled with cc) and fuzz/dicts/<target>.dict the JSON keys of the plan schema and
# the stdenv attributes. Everything is generated here from the repository's own sources; no
# host binary or third-party file is copied. Run `scripts/fuzz.sh` afterwards; it minimises
# the corpora (`cargo fuzz cmin`).
#
# Usage: fuzz/seeds.sh [TARGET...]   (default: every target)
set -euo pipefail

fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$fuzz/.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(plan attrs archive patch state elf)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# put TARGET NAME SELECTOR_HEX FILE...: writes the selector byte (or nothing for "-") and the
# concatenated files as corpus/TARGET/seed-NAME.
put() {
  local target=$1 name=$2 selector=$3
  shift 3
  mkdir -p "$fuzz/corpus/$target"
  {
    [ "$selector" = - ] || printf "\\x$selector"
    cat "$@"
  } >"$fuzz/corpus/$target/seed-$name"
}

seed_plan() {
  local f
  for f in "$repo"/schema/examples/*.json "$repo"/tests/bad-plans/*.json; do
    case $f in *.attrs.json) continue ;; esac
    put plan "$(basename "$f" .json)" - "$f"
  done
  cat >"$tmp/preset.json" <<'EOF'
{"version":1,"name":"demo","outputs":["out","dev","lib"],
 "inputs":{"src":"/nix/store/00000000000000000000000000000000-demo.tar.gz","cc":"/usr","zlib":["/usr","/usr/local"]},
 "deps":{"build":["cc"],"host":["zlib"]},"propagate":{"host":["zlib"],"output":"dev"},
 "env":{"CFLAGS":"-O2 ${env.EXTRA}","EXTRA":"-g","LIT":"$${not.a.reference}"},
 "preset":{"system":"autotools","srcs":["${inputs.src}"],"doCheck":true,"patches":["${inputs.src}"],
   "configureFlags":["--prefix=${outputs.out}","--libdir=${outputs.lib}/lib","-j${build.cores}"]},
 "edits":[{"before":{"phase":"build","insert":{"name":"pre","steps":[{"run":{"argv":["true"]}}]}}},
          {"after":{"phase":"install","insert":{"name":"post","cwd":"${build.top}","steps":[{"write":{"path":"${outputs.dev}/x","content":"y"}}]}}},
          {"replace":{"phase":"check","with":{"name":"check","steps":[{"run":{"argv":["make","check"],"env":{"A":"b"}}}]}}},
          {"delete":{"phase":"dist"}}]}
EOF
  put plan preset-autotools - "$tmp/preset.json"
  local system
  for system in cmake meson make; do
    printf '{"version":1,"name":"s","inputs":{"src":"/src"},"preset":{"system":"%s","srcs":["${inputs.src}"],"sourceRoot":"s-1","makeFlags":["V=1"],"installTargets":["install"]}}' \
      "$system" >"$tmp/$system.json"
    put plan "preset-$system" - "$tmp/$system.json"
  done
  # graft: same-length store paths, a templated new path, and the refusals' neighbourhood.
  printf '%s' '{"version":1,"name":"g","inputs":{"app":"/nix/store/00000000000000000000000000000000-app-1"},"phases":[{"name":"graft","steps":[{"graft":{"from":"${inputs.app}","to":"${outputs.out}","replace":{"/nix/store/11111111111111111111111111111111-zlib-1.3":"/nix/store/22222222222222222222222222222222-zlib-1.4","/nix/store/00000000000000000000000000000000-app-1":"${outputs.out}"}}}]}]}' >"$tmp/graft.json"
  put plan graft - "$tmp/graft.json"
  printf '%s' '{"version":1,"name":"g","phases":[{"name":"graft","steps":[{"graft":{"from":"/nix/store/00000000000000000000000000000000-a","to":"${outputs.out}","replace":{"/nix/store/11111111111111111111111111111111-zlib":"/nix/store/22222222222222222222222222222222-zlib-1"}}}]}]}' >"$tmp/graft-length.json"
  put plan graft-length - "$tmp/graft-length.json"
}

seed_attrs() {
  local f
  for f in "$repo"/tests/fixtures/stdenv/golden/*.attrs.json "$repo"/tests/bad-plans/*.attrs.json; do
    put attrs "$(basename "$f" .attrs.json)" - "$f"
  done
  put attrs plan-in-attrs - <(printf '{"name":"hello","outputs":{"out":"/nix/store/00000000000000000000000000000000-hello"},"kilnSplit":null,"kiln":%s}' \
    "$(tr -d '\n' <"$repo/schema/examples/c-program.json" | sed 's/"name": "hello-c",//')")
}

seed_archive() {
  local src=$tmp/archive-src
  mkdir -p "$src/pkg-1.0/sub/deeper"
  printf 'int main(void) { return 0; }\n' >"$src/pkg-1.0/main.c"
  printf '#!/bin/sh\necho hi\n' >"$src/pkg-1.0/run.sh"
  chmod 755 "$src/pkg-1.0/run.sh"
  ln -s main.c "$src/pkg-1.0/link"
  ln "$src/pkg-1.0/main.c" "$src/pkg-1.0/sub/hard"
  printf 'x\n' >"$src/pkg-1.0/sub/deeper/$(printf 'n%.0s' $(seq 1 120))"
  truncate -s 8192 "$src/pkg-1.0/sparse"
  printf 'end' >>"$src/pkg-1.0/sparse"
  local t=$tmp/archives
  mkdir -p "$t"
  (
    cd "$src"
    tar -b1 --format=gnu -cf "$t/gnu.tar" pkg-1.0
    tar -b1 --format=gnu --sparse -cf "$t/sparse.tar" pkg-1.0/sparse pkg-1.0/main.c
    tar -b1 --format=posix --pax-option=mtime:=1700000000.5 -cf "$t/pax.tar" pkg-1.0
    tar -b1 --format=v7 -cf "$t/v7.tar" pkg-1.0/main.c pkg-1.0/run.sh
    tar -b1 --format=ustar -cf "$t/ustar.tar" pkg-1.0/main.c pkg-1.0/link
    zip -q -y -r "$t/src.zip" pkg-1.0 -x pkg-1.0/sparse
  )
  gzip -9 -c "$t/gnu.tar" >"$t/gnu.tar.gz"
  bzip2 -9 -c "$t/gnu.tar" >"$t/gnu.tar.bz2"
  xz -c "$t/ustar.tar" >"$t/ustar.tar.xz"
  zstd -q -c "$t/pax.tar" >"$t/pax.tar.zst"
  lzma -c "$t/v7.tar" >"$t/v7.tar.lzma"
  printf 'just one file\n' | gzip -c >"$t/single.gz"
  local f
  for f in gnu.tar sparse.tar pax.tar v7.tar src.zip gnu.tar.gz gnu.tar.bz2 ustar.tar.xz pax.tar.zst single.gz; do
    put archive "raw-$f" 00 "$t/$f"
  done
  put archive "raw-v7.tar.lzma" 01 "$t/v7.tar.lzma"
  put archive "named-gnu.tar.gz" 07 "$t/gnu.tar.gz"
  put archive "source-root-dot" 10 "$t/ustar.tar"
  put archive "source-root-pkg" 18 "$t/ustar.tar"
  # The harness compresses these itself (selector 2..6: gzip, bzip2, xz, zstd, lzma).
  put archive gzip-ustar.tar 02 "$t/ustar.tar"
  put archive bzip2-v7.tar 03 "$t/v7.tar"
  put archive xz-pax.tar 04 "$t/pax.tar"
  put archive zstd-sparse.tar 05 "$t/sparse.tar"
  put archive lzma-ustar.tar 06 "$t/ustar.tar"
}

seed_patch() {
  local g=$tmp/git
  git init -q "$g"
  (
    cd "$g"
    git config user.email fuzz@example.invalid
    git config user.name fuzz
    printf 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n' >a.txt
    printf 'echo old\n' >old.sh
    printf 'keep\nme\n' >copy-src.txt
    printf 'gone\n' >delete.txt
    printf '#!/bin/sh\n' >mode.sh
    printf 'no newline' >eol.txt
    git add -A && git commit -q -m base
    printf 'one\nTWO\nthree\nfour\nfive\nSIX\nseven\neight\n' >a.txt
    git mv old.sh new.sh
    printf 'echo new\n' >new.sh
    cp copy-src.txt copied.txt && printf 'more\n' >>copied.txt
    git rm -q delete.txt
    chmod 755 mode.sh
    printf 'with newline\n' >eol.txt
    mkdir -p dir && printf 'created\n' >dir/created.txt
    printf '\x00\x01binary' >bin.dat
    git add -A
    git diff --cached -M -C --find-copies-harder -- . ':!bin.dat' >"$tmp/git.patch"
    git diff --cached -M -C --find-copies-harder --binary -- bin.dat >"$tmp/binary.patch"
    git diff --cached --no-renames -- a.txt eol.txt >"$tmp/plain.patch"
  )
  local tree=$tmp/tree.txt
  {
    printf 'F a.txt\none\ntwo\nthree\nfour\nfive\nsix\nseven\n'
    printf 'F old.sh\necho old\n'
    printf 'F copy-src.txt\nkeep\nme\n'
    printf 'F delete.txt\ngone\n'
    printf 'X mode.sh\n#!/bin/sh\n'
    printf 'F eol.txt\nno newline\n\\\n'
    printf 'D dir\n'
    printf 'L out ../../../sentinel\n'
    printf '%%%%\n'
  } >"$tree"
  put patch git-rename-copy 01 "$tree" "$tmp/git.patch"
  put patch git-binary 01 "$tree" "$tmp/binary.patch"
  put patch plain-p1 01 "$tree" "$tmp/plain.patch"
  put patch plain-p1-gzip 04 "$tree" "$tmp/plain.patch"
  printf -- '--- a/out/keep\n+++ b/out/keep\n@@ -1 +1 @@\n-sentinel\n+pwned\n' >"$tmp/escape.patch"
  put patch through-symlink 01 "$tree" "$tmp/escape.patch"
  printf -- '--- main.c.orig\n+++ main.c\n@@ -1,3 +1,4 @@\n int main(void)\n {\n+  /* fuzz */\n   return 0;\n' >"$tmp/p0.patch"
  put patch p0-default-tree 00 "$tmp/p0.patch"
  put patch lz4 01 <(printf 'F programs/lz4cli.c\n'; seq 1 49 | sed 's/^/line /'
    grep -E '^[ -]' "$repo/tests/fixtures/stdenv/lz4-welcome.patch" | grep -v '^---' | cut -c2-
    printf '%%%%\n') \
    "$repo/tests/fixtures/stdenv/lz4-welcome.patch"
}

seed_state() {
  (cd "$repo" && cargo run -q -p kiln-fuzz-harness --bin kiln-fuzz-state-seeds -- "$fuzz/corpus/state")
}

seed_elf() {
  local e=$tmp/elf
  mkdir -p "$e"
  cat >"$e/greet.c" <<'EOF'
int greet(int x) { return x + 1; }
EOF
  cat >"$e/prog.c" <<'EOF'
#include <unistd.h>
int greet(int);
void _start(void) { greet(41); write(1, "hi\n", 3); _exit(0); }
EOF
  cat >"$e/hello.c" <<'EOF'
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
EOF
  local small="-Os -fno-asynchronous-unwind-tables -Wl,-z,noseparate-code -Wl,-z,norelro -Wl,--build-id"
  (
    cd "$e"
    cc -shared -fPIC -nostdlib $small -s -Wl,-soname,libgreet.so -o libgreet.so greet.c
    cc -nostartfiles $small -s -o rpath prog.c -L. -Wl,--no-as-needed -lgreet -lc \
      -Wl,--disable-new-dtags -Wl,-rpath,'/nonexistent/lib:/lib/x86_64-linux-gnu:$ORIGIN/../lib:/usr/lib/x86_64-linux-gnu'
    cc -nostartfiles $small -s -o runpath prog.c -L. -Wl,--no-as-needed -lgreet -lc \
      -Wl,--enable-new-dtags -Wl,-rpath,'/lib/x86_64-linux-gnu:/nonexistent'
    cc -nostartfiles -static -nostdlib $small -s -o static greet.c -Wl,-e,greet
    cc -g -o hello hello.c -Wl,-rpath,/nonexistent:/lib/x86_64-linux-gnu
  )
  local f
  for f in libgreet.so rpath runpath static hello; do
    put elf "$f" - "$e/$f"
  done
}

dicts() {
  mkdir -p "$fuzz/dicts"
  {
    grep -o '"[A-Za-z_][A-Za-z0-9_]*"' "$repo/schema/plan.schema.json" | sort -u
    printf '"${outputs.out}"\n"${inputs.src}"\n"${env.PATH}"\n"${build.top}"\n"${build.cores}"\n"$${"\n'
  } >"$fuzz/dicts/plan.dict"
  {
    cat "$fuzz/dicts/plan.dict"
    grep -o 'row("[A-Za-z_][A-Za-z0-9_]*"' "$repo/stdenv/src/table.rs" | sed 's/row(//' | sort -u
  } >"$fuzz/dicts/attrs.dict"
  printf '"--- a/"\n"+++ b/"\n"@@ -1 +1 @@"\n"diff --git a/"\n"rename from "\n"rename to "\n"copy from "\n"copy to "\n"new file mode 100755"\n"deleted file mode 100644"\n"old mode "\n"new mode "\n"similarity index "\n"GIT binary patch"\n"\\\\ No newline at end of file"\n"/dev/null"\n"\\x0a%%%%\\x0a"\n"L x ../../../sentinel\\x0a"\n' \
    >"$fuzz/dicts/patch.dict"
  printf '"ustar\\x00"\n"ustar  \\x00"\n"././@LongLink"\n"PK\\x03\\x04"\n"PK\\x01\\x02"\n"PK\\x05\\x06"\n"../"\n"pkg-1.0/"\n' \
    >"$fuzz/dicts/archive.dict"
  printf '"\\x0a%%%%\\x0a"\n"build/"\n"outputs/out/"\n"outputs/dev"\n"\\"workdir\\""\n"{\\"bytes\\":[255]}"\n"\\"outputs\\""\n"\\"format\\""\n"ustar\\x00"\n"../"\n' \
    >"$fuzz/dicts/state.dict"
  printf '"\\x7fELF"\n"$ORIGIN"\n"/lib/x86_64-linux-gnu"\n"libc.so.6"\n"GNU\\x00"\n' >"$fuzz/dicts/elf.dict"
}

dicts
for target in "${targets[@]}"; do
  "seed_$target"
done
for target in "${targets[@]}"; do
  printf '%s: %s seed files\n' "$target" "$(find "$fuzz/corpus/$target" -name 'seed-*' | wc -l)"
done
