# kiln's stage 0: a C/C++ toolchain in the Nix store, made from Debian bookworm's binary
# packages by kiln itself (no bash, no nixpkgs), so that builds need nothing of the host.
#
#   stage0 = import ./bootstrap/stage0 { kiln = ...; };
#   stage0.runtime     glibc, libgcc_s, libstdc++: what a built program needs at run time
#   stage0.toolchain   gcc/g++ 12, binutils, libc headers, sh, coreutils, make, ...: what a
#                      build needs; its bin/ goes on PATH as any input's
#   stage0.tools       bash, cmake, ninja, meson (python3), perl, m4, autoconf, automake,
#                      libtool: the other presets' tools; a build dependency's hook gives
#                      perl its library path
#   stage0.debs        the .deb files, by package name (fixed-output store paths)
#
# The .debs are pinned in ./debs.lock and added to the store by
# `bash scripts/fetch-stage0-debs.sh`; this file refers to them only by name and hash, like
# nixpkgs' requireFile, and never downloads anything. A missing one fails evaluation with a
# message naming that script.
#
# How the pieces fit (docs/toolchain.md says why):
#
# - Each derivation unpacks its .debs into its output with a merged /usr (`mergeUsr`: `lib/`
#   and `bin/` go under `usr/`, absolute symlinks become relative ones), then links `bin`, `lib`,
#   `lib64` and `sbin` to their `usr/` directories, as a merged-/usr Debian system does.
# - `autoPatchelf` gives every ELF file the runtime's loader as interpreter and a RUNPATH of the
#   store directories that hold its libraries: the runtime's first (one glibc for everything),
#   then the toolchain's own (libisl, libmpc, ... for cc1).
# - gcc needs no wrapper: a `specs` file in its library directory (read by gcc at every start)
#   adds `--sysroot=<toolchain>` for gcc and for ld (headers, crt files and the libc linker
#   scripts come from the toolchain, laid out as Debian lays them out; ld resolves the scripts'
#   `/lib/...` paths inside the sysroot), and makes every program it links use the
#   runtime's loader and carry a RUNPATH to the runtime's libraries. The toolchain holds its
#   own copy of the runtime's files for linking (ld resolves the libc.so script inside the
#   sysroot); programs refer only to the runtime.
{
  kiln,
  # The pinned .debs (tests point this at a lock of their own).
  lock ? ./debs.lock,
}:

let
  kilnLib = import ../. { inherit kiln; };
  inherit (kilnLib) refs;
  inherit (builtins)
    filter
    map
    match
    elemAt
    length
    genList
    replaceStrings
    listToAttrs
    ;

  # --- The lock: `set package version arch sha256` per line. -----------------------------------

  lockLines = filter (line: line != "" && match "[[:space:]]*#.*" line == null) (
    filter builtins.isString (builtins.split "\n" (builtins.readFile lock))
  );

  parseLine =
    line:
    let
      fields = filter (field: builtins.isString field && field != "") (
        builtins.split "[[:space:]]+" line
      );
    in
    if length fields != 5 then
      throw "bootstrap/stage0/debs.lock: a line needs 5 fields (set package version arch sha256): '${line}'"
    else
      {
        set = elemAt fields 0;
        package = elemAt fields 1;
        version = elemAt fields 2;
        arch = elemAt fields 3;
        sha256 = elemAt fields 4;
      };

  entries = map parseLine lockLines;

  # The store name scripts/fetch-stage0-debs.sh gives the file: no epoch, `~` as `_`.
  storeName =
    entry:
    let
      noEpoch =
        let
          parts = match "[0-9]+:(.*)" entry.version;
        in
        if parts == null then entry.version else builtins.head parts;
    in
    "${entry.package}_${replaceStrings [ "~" ] [ "_" ] noEpoch}_${entry.arch}.deb";

  fetchHint = "run `bash scripts/fetch-stage0-debs.sh` (it downloads the pinned .debs with apt-get and adds them to the store)";

  # One .deb as a fixed-output path. Like nixpkgs' requireFile it is never built: the script
  # adds it to the store, where Nix finds it valid by name and hash. The builder only runs when
  # it is missing, and fails naming the script (evaluation fails first, below, when it can tell).
  debFile =
    entry:
    let
      name = storeName entry;
      drv = derivation {
        inherit name;
        system = builtins.currentSystem;
        builder = kilnLib.builder;
        __structuredAttrs = true;
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        outputHash = entry.sha256;
        kiln = kilnLib.mkPlan {
          inherit name;
          phases = [
            {
              name = "missing";
              steps = [
                { run.argv = [ "/${name}-is-not-in-the-store:${replaceStrings [ " " "`" ] [ "-" "" ] fetchHint}" ]; }
              ];
            }
          ];
        };
      };
      # Impure evaluation (nix-build) can see whether the path is there and say so at once.
      present = builtins.pathExists (builtins.unsafeDiscardStringContext drv.outPath);
    in
    if builtins ? currentSystem && !present then
      throw "kiln stage 0: ${name} (${entry.package} ${entry.version}, pinned in bootstrap/stage0/debs.lock) is not in the Nix store: ${fetchHint}"
    else
      drv;

  debs = listToAttrs (
    map (entry: {
      name = entry.package;
      value = debFile entry;
    }) entries
  );

  debsOf = set: map (entry: debs.${entry.package}) (filter (entry: entry.set == set) entries);

  # --- Building a root from .debs. -------------------------------------------------------------

  multiarch = "x86_64-linux-gnu";

  # The steps that unpack the input list `name` into the output as a merged-/usr root, with
  # top-level links to the `usr/` directories `dirs`.
  unpackRoot = name: count: dirs: [
    {
      unpack = {
        srcs = genList (index: refs.inputAt name index) count;
        into = refs.out;
        mergeUsr = true;
      };
    }
  ]
  ++ map
    (dir: {
      symlink = {
        target = "usr/${dir}";
        link = "${refs.out}/${dir}";
      };
    })
    dirs;

  runtimeDebs = debsOf "runtime";

  runtime = kilnLib.mkDerivation {
    name = "kiln-stage0-runtime";
    inputs.debs = runtimeDebs;
    phases = [
      {
        name = "unpack";
        steps = unpackRoot "debs" (length runtimeDebs) [
          "lib"
          "lib64"
        ];
      }
      {
        name = "patchelf";
        steps = [
          {
            autoPatchelf = {
              paths = [ refs.out ];
              interpreter = "${refs.out}/usr/lib/${multiarch}/ld-linux-x86-64.so.2";
              # iconv's modules link helpers of their own directory.
              searchPath = [
                "${refs.out}/usr/lib/${multiarch}"
                "${refs.out}/usr/lib/${multiarch}/gconv"
              ];
            };
          }
        ];
      }
    ];
  };

  # The runtime's loader and library directory, as store path strings.
  loader = "${runtime}/usr/lib/${multiarch}/ld-linux-x86-64.so.2";
  runtimeLib = "${runtime}/usr/lib/${multiarch}";

  toolchainDebs = runtimeDebs ++ debsOf "core";

  gccLib = "usr/lib/gcc/${multiarch}/12";

  # gcc's specs, appended to its built-in ones (`+` appends to a spec): the sysroot for headers, crt files and
  # libraries, the toolchain's own `as` and `ld` whatever PATH says (`-B`, as nixpkgs'
  # cc-wrapper does), and the runtime's loader and library directory for every program linked.
  specs = ''
    *self_spec:
    + %{!-sysroot=*:--sysroot=${refs.out}} -B${refs.out}/usr/bin/

    *link:
    + --sysroot=${refs.out} %{!static:%{!static-pie:%{!shared:-dynamic-linker ${loader}}}} %{!static:%{!static-pie:-rpath ${runtimeLib}}}

  '';

  toolchain = kilnLib.mkDerivation {
    name = "kiln-stage0-toolchain";
    inputs = {
      debs = toolchainDebs;
      runtime = runtime;
    };
    phases = [
      {
        name = "unpack";
        steps = unpackRoot "debs" (length toolchainDebs) [
          "bin"
          "sbin"
          "lib"
          "lib64"
        ];
      }
      {
        name = "patchelf";
        steps = [
          {
            autoPatchelf = {
              paths = [ refs.out ];
              interpreter = loader;
              searchPath = [
                runtimeLib
                "${refs.out}/usr/lib/${multiarch}"
                "${refs.out}/usr/lib/${multiarch}/gconv"
              ];
            };
          }
        ];
      }
      {
        name = "configure";
        steps = [
          # A specs file in gcc's library directory replaces gcc's built-in specs whole (gcc
          # then skips the set-up that picks, e.g., the shared libgcc for g++), so it starts as
          # gcc's own -dumpspecs and the additions are appended.
          {
            run = {
              argv = [
                "${refs.out}/usr/bin/gcc-12"
                "-dumpspecs"
              ];
              stdout = "${refs.top}/builtin.specs";
            };
          }
          {
            write = {
              path = "${refs.top}/kiln.specs";
              content = specs;
            };
          }
          {
            run = {
              argv = [
                "${refs.out}/bin/cat"
                "${refs.top}/builtin.specs"
                "${refs.top}/kiln.specs"
              ];
              stdout = "${refs.out}/${gccLib}/specs";
            };
          }
        ]
        # Links to what the .debs do not ship: gcc's sanitizer and plugin libraries, and tar's
        # remote-tape helper (an alternative that dpkg would make).
        ++ map (path: { remove.path = "${refs.out}/${path}"; }) [
          "${gccLib}/libasan.so"
          "${gccLib}/libubsan.so"
          "${gccLib}/libtsan.so"
          "${gccLib}/liblsan.so"
          "${gccLib}/libcc1.so"
          "etc/rmt"
        ]
        # The compiler wrapper (NIX_CFLAGS_COMPILE, NIX_LDFLAGS, hardening, store rpaths; see
        # cc/ in kiln's sources): a copy of the static kiln, which acts as the wrapper when
        # called as cc, gcc, c++, g++ or cpp, and reads where the real compilers are from
        # wrapper/nix-support/kiln-cc.json. These are the names configure scripts and make look
        # for (dash already gives `sh`); gcc-12 and friends stay unwrapped.
        ++ [
          { mkdir.path = "${refs.out}/wrapper/bin"; }
          {
            copy = {
              from = kilnLib.builder;
              to = "${refs.out}/wrapper/bin/kiln-cc";
            };
          }
          {
            write = {
              path = "${refs.out}/wrapper/nix-support/kiln-cc.json";
              content = builtins.toJSON {
                cc = "${refs.out}/usr/bin/gcc-12";
                cxx = "${refs.out}/usr/bin/g++-12";
                cpp = "${refs.out}/usr/bin/cpp-12";
              };
            };
          }
        ]
        ++ map
          (name: {
            symlink = {
              target = "../../wrapper/bin/kiln-cc";
              link = "${refs.out}/usr/bin/${name}";
            };
          })
          [
            "cc"
            "gcc"
            "c++"
            "g++"
            "cpp"
          ];
      }
      {
        name = "check";
        steps = [
          {
            write = {
              path = "${refs.top}/check.c";
              content = ''
                #include <math.h>
                #include <stdio.h>
                int main(void) { printf("stage 0 works: %.1f\n", sqrt(2.25)); return 0; }
              '';
            };
          }
          {
            run.argv = [
              "${refs.out}/bin/gcc"
              "-O2"
              "-o"
              "${refs.top}/check"
              "${refs.top}/check.c"
              "-lm"
            ];
          }
          { run.argv = [ "${refs.top}/check" ]; }
        ];
      }
    ];
  };

  # --- The other presets' tools: bash, cmake, ninja, meson (python3), perl, autotools. ------

  toolsDebs = debsOf "tools";

  # Perl's library directories as Debian's perl has them compiled in (under /usr), here under
  # the tools' store path: PERL5LIB, as nixpkgs' perl setup hook sets it.
  perlLib =
    prefix:
    builtins.concatStringsSep ":" (
      map (dir: "${prefix}/usr/${dir}") [
        "lib/${multiarch}/perl5/5.36"
        "share/perl5"
        "lib/${multiarch}/perl/5.36"
        "share/perl/5.36"
        "lib/${multiarch}/perl-base"
      ]
    );

  # Where autoconf, automake and libtool look for their data and the programs they call
  # (`/usr/share/...`, `/usr/bin/m4`, `/bin/sed`, compiled into the scripts): the tools' own
  # store path, or the toolchain's. Each `from` must occur in its file (the step fails
  # otherwise): a new Debian version that moves one is caught here, not by a build that
  # silently reads nothing.
  own = path: [
    path
    "${refs.out}${path}"
  ];
  toolchainOwn = path: [
    path
    "${toolchain}${path}"
  ];
  relocations = {
    "usr/bin/autoconf" = map own [
      "/usr/bin/autom4te"
      "/usr/share/autoconf"
    ];
    "usr/bin/autoheader" = map own [
      "/usr/bin/autom4te"
      "/usr/share/autoconf"
    ];
    "usr/bin/autom4te" = map own [
      "/usr/bin/m4"
      "/usr/share/autoconf"
    ];
    "usr/bin/autoreconf" = map own [
      "/usr/bin/autoconf"
      "/usr/bin/autoheader"
      "/usr/bin/autom4te"
      "/usr/share/autoconf"
    ];
    "usr/bin/autoscan" = map own [
      "/usr/bin/autom4te"
      "/usr/share/autoconf"
    ];
    "usr/bin/autoupdate" = map own [
      "/usr/bin/autom4te"
      "/usr/bin/m4"
      "/usr/share/autoconf"
    ];
    "usr/bin/ifnames" = map own [ "/usr/share/autoconf" ];
    "usr/share/autoconf/autom4te.cfg" = map own [ "/usr/share/autoconf" ];
    "usr/bin/aclocal-1.16" = map own [
      "/usr/share/automake-1.16"
      "/usr/share/aclocal"
    ];
    "usr/bin/automake-1.16" = map own [ "/usr/share/automake-1.16" ];
    "usr/share/automake-1.16/Automake/Config.pm" = map own [ "/usr/share/automake-1.16" ];
    "usr/bin/libtoolize" =
      map own [
        "/usr/share/libtool"
        "/usr/share/aclocal"
      ]
      ++ [
        [
          "datadir=\"/usr/share\""
          "datadir=\"${refs.out}/usr/share\""
        ]
        [
          "prefix=\"/usr\""
          "prefix=\"${refs.out}/usr\""
        ]
      ]
      ++ map toolchainOwn [
        "/bin/grep"
        "/bin/sed"
      ];
    "usr/bin/libtool" =
      map own [ "/bin/bash" ]
      ++ map toolchainOwn [
        "/bin/sed"
        "/bin/grep"
        "/bin/dd"
        "/usr/bin/nm"
        "/usr/bin/ld"
      ];
  };

  relocate = file: pairs: {
    substitute = {
      file = "${refs.out}/${file}";
      replace = map (pair: {
        from = elemAt pair 0;
        to = elemAt pair 1;
      }) pairs;
    };
  };

  tools = kilnLib.mkDerivation {
    name = "kiln-stage0-tools";
    inputs = {
      debs = toolsDebs;
      inherit runtime toolchain;
    };
    # The tools' own programs first: the shebang patching finds perl, python3 and bash here.
    env = {
      PATH = "${refs.out}/usr/bin:${refs.env "PATH"}";
      PERL5LIB = perlLib refs.out;
      LC_ALL = "C";
    };
    phases = [
      {
        name = "unpack";
        # `lib` too: python3 finds its standard library from where it is run (`bin/python3`
        # → `../lib/python3.11`), and scripts' `#!` lines name `<tools>/bin/python3`.
        steps = unpackRoot "debs" (length toolsDebs) [
          "bin"
          "lib"
          "share"
        ];
      }
      {
        name = "patchelf";
        steps = [
          {
            autoPatchelf = {
              paths = [ refs.out ];
              interpreter = loader;
              # The runtime first (one glibc), then what the toolchain already has (zlib,
              # libzstd, ...), then the tools' own libraries (libpython, libperl, libcurl, ...).
              searchPath = [
                runtimeLib
                "${toolchain}/usr/lib/${multiarch}"
                "${refs.out}/usr/lib/${multiarch}"
              ];
            };
          }
        ];
      }
      {
        name = "configure";
        steps =
          builtins.attrValues (builtins.mapAttrs relocate relocations)
          # The links dpkg's alternatives would make.
          ++ map
            (name: {
              symlink = {
                target = "${name}-1.16";
                link = "${refs.out}/usr/bin/${name}";
              };
            })
            [
              "aclocal"
              "automake"
            ]
          ++ [
            # Scripts' `#!/usr/bin/perl`, `#! /usr/bin/env python3`, `#! /bin/bash`, ...: the
            # interpreters of the tools' own bin (PATH above), then the toolchain's (sh).
            {
              fixup = {
                moveDocs = false;
                moveLib64 = false;
                moveSbin = false;
                splitOutputs = false;
                strip = false;
                shrinkRpath = false;
                compressMan = false;
                pruneLibtoolFiles = false;
                makeSymlinksRelative = false;
                checkBrokenSymlinks = false;
                auditTmpdir = false;
              };
            }
            # What a build that uses the tools needs to run them (as a dependency's setup hook).
            {
              write = {
                path = "${refs.out}/nix-support/kiln-hook.json";
                content = builtins.toJSON {
                  version = 1;
                  env.PERL5LIB = perlLib "@self@";
                };
              };
            }
          ];
      }
      {
        name = "check";
        steps = map (argv: { run.argv = argv; }) [
          [ "bash" "--version" ]
          [ "cmake" "--version" ]
          [ "ninja" "--version" ]
          [ "meson" "--version" ]
          [ "python3" "-c" "import ctypes, hashlib, sqlite3, ssl, zlib" ]
          [ "${refs.out}/bin/python3" "-c" "import encodings" ]
          [ "perl" "-MFile::Temp" "-MData::Dumper" "-e" "1" ]
          [ "autoconf" "--version" ]
          [ "autoreconf" "--version" ]
          [ "automake" "--version" ]
          [ "aclocal" "--version" ]
          [ "libtoolize" "--version" ]
        ];
      }
    ];
  };
in
{
  inherit
    debs
    runtime
    toolchain
    tools
    entries
    ;
}
