# kiln's Nix library: derivations whose builder is the static kiln binary. It needs nothing but
# Nix's builtins (no nixpkgs), so it can sit at the very bottom of a bootstrap.
#
#   let
#     lib = import ./bootstrap { kiln = ./target/static/x86_64-unknown-linux-gnu/release/kiln; };
#     inherit (lib) refs;
#   in
#   lib.mkDerivation {
#     name = "hello";
#     inputs = { src = ./src; cc = "/usr"; };
#     env = { CFLAGS = "-O2"; };
#     phases = [
#       { name = "build"; steps = [
#           { mkdir = { path = "${refs.out}/bin"; }; }
#           { run = { argv = [ "gcc" "-o" "${refs.out}/bin/hello" "${refs.input "src"}/hello.c" ]; }; }
#       ]; }
#     ];
#   }
#
# `kiln` is the static binary, given as any of:
#   - a Nix path or an absolute string path to the binary itself
#     (e.g. target/static/x86_64-unknown-linux-gnu/release/kiln);
#   - a Nix path or an absolute string path to a directory holding bin/kiln
#     (e.g. the /nix/store/...-kiln that scripts/store-add.sh prints);
#   - a derivation (anything with an outPath) whose output holds bin/kiln.
# Paths are copied into the store under the name "kiln" (content-addressed: the same binary gives
# the same store path whichever way it came in).
{ kiln }:

let
  # --- The builder: the kiln binary, as a store path string (with its context). ---------------

  builder =
    if builtins.isAttrs kiln then
      # A derivation: its output is a package with bin/kiln. Building it is Nix's business.
      "${kiln}/bin/kiln"
    else
      let
        location = toString kiln;
        isDir = builtins.pathExists "${location}/bin/kiln";
        stored = builtins.path {
          path = kiln;
          name = "kiln";
        };
      in
      if !(builtins.substring 0 1 location == "/") then
        throw "kiln bootstrap: `kiln` must be an absolute path to the static kiln binary (or to a directory with bin/kiln), not '${location}'"
      else if !(builtins.pathExists location) then
        throw "kiln bootstrap: `kiln` is '${location}', which does not exist. Build it with scripts/build-static.sh."
      else if isDir then
        "${stored}/bin/kiln"
      else
        "${stored}";

  # --- The plan (what kiln reads from .attrs.json, attribute `kiln`). ----------------------------

  # The plan for a derivation's arguments. Precedence, highest first: the arguments `name`,
  # `inputs`, `env` and `phases` when given; then `plan` (e.g. a whole plan read with
  # `builtins.fromJSON`); then the defaults (version 1, no inputs, no env, no phases).
  # Nix paths anywhere in the plan (e.g. `inputs.src = ./.`) are copied into the store and
  # become store path strings.
  mkPlan =
    {
      name,
      plan ? { },
      ...
    }@args:
    {
      version = 1;
      inputs = { };
      env = { };
      phases = [ ];
    }
    // plan
    // { inherit name; }
    // builtins.intersectAttrs {
      inputs = null;
      env = null;
      phases = null;
      deps = null;
      propagate = null;
      preset = null;
      edits = null;
    } args;

  # Arguments that make up the plan rather than attributes of the derivation.
  planArgs = [
    "plan"
    "phases"
    "inputs"
    "env"
    "deps"
    "propagate"
    "preset"
    "edits"
  ];

  # Attributes mkDerivation sets itself; passing them is a mistake, reported rather than ignored.
  reserved = [
    "builder"
    "args"
    "kiln"
    "__structuredAttrs"
  ];

  # A derivation built by kiln.
  #
  #   name     the derivation's name (and the plan's).
  #   phases   the plan's phases: [ { name; steps = [ STEP ... ]; enabled?; timeout?; cwd?; } ].
  #   inputs   the plan's named inputs: NAME = path, or a list of paths. Referenced in steps as
  #            "${refs.input "NAME"}"; each input's bin/ goes on PATH unless env.PATH is set.
  #   env      the plan's environment variables for every step.
  #   plan     further plan fields, or a whole plan (see mkPlan for precedence).
  #   outputs  the derivation's outputs, default [ "out" ].
  #   system   default builtins.currentSystem.
  #   ...      every other attribute (e.g. a `nonce` that forces a rebuild) passes through to the
  #            derivation, and so into .attrs.json.
  #
  # The derivation uses structured attributes: Nix writes every attribute to .attrs.json and
  # exports none as an environment variable; kiln runs with no arguments and reads its plan from
  # the `kiln` attribute there.
  mkDerivation =
    {
      name,
      outputs ? [ "out" ],
      system ? builtins.currentSystem,
      ...
    }@args:
    let
      clashes = builtins.filter (attr: args ? ${attr}) reserved;
      passThrough = removeAttrs args planArgs;
    in
    if clashes != [ ] then
      throw "kiln bootstrap: mkDerivation sets ${builtins.concatStringsSep ", " clashes} itself; do not pass ${
        if builtins.length clashes == 1 then "it" else "them"
      } (derivation '${name}')"
    else
      let
        attrs =
          passThrough
          // {
            inherit name outputs system builder;
            __structuredAttrs = true;
            kiln = mkPlan args;
            stdenv = devSetup;
          };
      in
      derivation attrs
      // {
        devShell = devShellOf attrs null;
        devShellAt = devShellOf attrs;
      };

  # --- Development shells: nix-shell and nix develop on kiln derivations. ---------------------
  #
  # nix-shell (Nix 2.8 and later) and nix develop (2.4 and later) give a shell the environment of
  # a derivation by sourcing `$stdenv/setup` when the derivation has a `stdenv` attribute. kiln's
  # derivations carry `stdenv = devSetup`: a store directory whose `setup` asks kiln itself for
  # the environment a Nix build gives the phase (`kiln env --nix`: the inputs' bin on PATH, the
  # dependencies' CPATH, PKG_CONFIG_PATH, …, the plan's env), with no nixpkgs and no stdenv.
  # The phase is $KILN_PHASE (nix-shell sees the caller's environment), else the derivation's
  # `kilnPhase` attribute, else the first phase. docs/local.md ("nix-shell and nix develop")
  # says how this differs from `kiln shell --at PHASE`.
  devSetup = derivation {
    name = "kiln-dev-setup";
    system = builtins.currentSystem;
    inherit builder;
    __structuredAttrs = true;
    kiln = mkPlan {
      name = "kiln-dev-setup";
      phases = [
        {
          name = "install";
          steps = [
            {
              write = {
                path = "${refs.out}/setup";
                # No `''${` in here: kiln would read it as a reference.
                content = ''
                  # Sourced by nix-shell and nix develop: kiln's environment for a phase of a kiln
                  # derivation, as a Nix build of it gives the phase (kiln env --nix).
                  # Nix 2.14 and earlier point NIX_ATTRS_JSON_FILE at the host's path.
                  __kiln_attrs=$NIX_ATTRS_JSON_FILE
                  if [ ! -e "$__kiln_attrs" ]; then __kiln_attrs=$NIX_BUILD_TOP/.attrs.json; fi
                  if [ ! -e "$__kiln_attrs" ]; then __kiln_attrs=$PWD/.attrs.json; fi
                  __kiln_phase=$KILN_PHASE
                  if [ -z "$__kiln_phase" ]; then __kiln_phase=$kilnPhase; fi
                  if [ -n "$__kiln_phase" ]; then
                    __kiln_env=$(${builder} env --nix --attrs "$__kiln_attrs" --at "$__kiln_phase" --format sh) || return 1
                  else
                    __kiln_env=$(${builder} env --nix --attrs "$__kiln_attrs" --format sh) || return 1
                  fi
                  eval "$__kiln_env"
                  # The shell says which phase it stands at, when one was named.
                  if [ -n "$__kiln_phase" ]; then export KILN_PHASE="$__kiln_phase"; fi
                  unset __kiln_attrs __kiln_phase __kiln_env
                '';
              };
            }
          ];
        }
      ];
    };
  };

  # The companion `nix develop` needs (it refuses a builder that is not bash): the derivation's
  # own attributes, with the store toolchain's bash as builder. Nothing builds it but
  # nix develop, which replaces its arguments with its own get-env.sh.
  devShellOf =
    attrs: phase:
    derivation (
      attrs
      // {
        builder = "${stage0.tools}/bin/bash";
        args = [ ];
      }
      // (if phase == null then { } else { kilnPhase = phase; })
    );

  # --- Split mode: phases as separate derivations chained by state archives. -------------------
  #
  #   lib.mkSplit {
  #     name = "hello-2.10"; inputs = …; phases = [ … ];           # or preset = …; as mkDerivation
  #     split = [ [ "unpack" "patch" ] [ "configure" ] [ "build" ] [ "install" "fixup" ] ];
  #     check = { phases = [ "check" ]; after = "build"; };      # optional: its own derivation
  #     source = { after = "patch"; };                           # optional: the patched source
  #   }
  #
  # Each group but the last is a stage derivation: it restores the previous stage's state, runs
  # its phases and outputs the next state (kiln-state: tar + zstd with a manifest). The last group
  # is the final derivation, whose outputs are the real ones. Every part builds with each output
  # at a placeholder of the same length as the real path (which only the final derivation
  # knows); the final one moves the placeholders to the real outputs, rewrites them everywhere
  # and proves none is left. `outputChecks` forbid references to the stages, so intermediates
  # cannot leak into the result.
  #
  # A stage's plan holds only the phases up to its own (for a preset: only the knobs of those
  # phases), so changing a later phase rebuilds only the parts from that phase on. Phases in no
  # group (e.g. `check`) do not run in the chain. The result is the final derivation with
  # `stages`, `checkDrv` and `sourceDrv` attached.

  # Which phase each preset knob belongs to (knobs not listed belong to every phase).
  presetKnobPhase = {
    configureScript = "configure";
    configureFlags = "configure";
    prefixKey = "configure";
    addPrefix = "configure";
    disableDependencyTracking = "configure";
    disableStatic = "configure";
    cmakeFlags = "configure";
    mesonFlags = "configure";
    buildFlags = "build";
    checkFlags = "check";
    checkTarget = "check";
    doCheck = "check";
    installFlags = "install";
    installTargets = "install";
    fixup = "fixup";
    dontFixup = "fixup";
    dontConfigure = "configure";
    dontBuild = "build";
    dontInstall = "install";
  };

  mkSplit =
    {
      name,
      split,
      outputs ? [ "out" ],
      system ? builtins.currentSystem,
      check ? null,
      source ? null,
      ...
    }@args:
    let
      inherit (builtins)
        elem
        elemAt
        filter
        genList
        length
        listToAttrs
        concatLists
        ;
      plan = mkPlan args;
      passThrough = removeAttrs args (
        planArgs
        ++ [
          "split"
          "check"
          "source"
          "outputs"
          "outputChecks"
        ]
      );
      groups = split;
      count = length groups;
      last = list: elemAt list (length list - 1);
      take = n: list: genList (elemAt list) n;
      # One hash part per output, so no placeholder is a prefix of another (`…-hello` and
      # `…-hello-static` would be with a shared one).
      placeholderHash =
        output: builtins.substring 0 32 (builtins.hashString "sha256" "kiln-placeholder-${output}");
      placeholders = listToAttrs (
        map (output: {
          name = output;
          value = "${builtins.storeDir}/${placeholderHash output}-${name}${
            if output == "out" then "" else "-${output}"
          }";
        }) outputs
      );
      # The phases of the first n groups.
      phasesOf = n: concatLists (take n groups);
      # The plan as a part that knows only the `kept` phases sees it.
      # cmake turns `doCheck` into `-DBUILD_TESTING=ON` at configure time.
      knobPhase =
        knob:
        if knob == "doCheck" && (plan.preset.system or "") == "cmake" then
          "configure"
        else
          presetKnobPhase.${knob};
      anchor = edit: (builtins.head (builtins.attrValues edit)).phase;
      # Whether a preset plan's edit concerns the `kept` phases: the phase it inserts (or
      # replaces with) is one of them, or it replaces one of them. Deletions and anything
      # not shaped like an edit stay (kiln reports a malformed edit itself).
      editConcerns =
        kept: edit:
        let
          kinds = builtins.attrNames edit;
          kind = builtins.head kinds;
          body = edit.${kind};
          named = if kind == "replace" then body."with" or null else body.insert or null;
          name = if builtins.isAttrs named then named.name or null else null;
        in
        if
          !(builtins.isAttrs edit)
          || length kinds != 1
          || !(builtins.isAttrs body)
          || kind == "delete"
          || name == null
        then
          true
        else
          elem name kept || (kind == "replace" && elem (body.phase or null) kept);
      truncate =
        kept:
        if plan.phases != [ ] then
          plan
          // {
            phases = filter (phase: elem phase.name kept) plan.phases;
            edits = filter (edit: elem (anchor edit) kept) (plan.edits or [ ]);
          }
        else
          plan
          # An edit that inserts a later phase (`after install`) must not change the
          # derivations of the earlier parts.
          // (if plan ? edits then { edits = filter (editConcerns kept) plan.edits; } else { })
          // {
            preset = removeAttrs plan.preset (
              filter (knob: presetKnobPhase ? ${knob} && !(elem (knobPhase knob) kept)) (
                builtins.attrNames plan.preset
              )
            );
          };
      part =
        {
          role,
          phases,
          state,
          kept,
          partName,
          partOutputs ? [ "out" ],
          extra ? { },
        }:
        derivation (
          passThrough
          // extra
          // {
            name = partName;
            outputs = partOutputs;
            inherit system builder;
            __structuredAttrs = true;
            kiln = truncate kept;
            kilnSplit = {
              version = 1;
              inherit role phases placeholders;
              state = if state == null then null else "${state}";
            };
          }
        );
      stages = genList (
        index:
        let
          group = elemAt groups index;
        in
        part {
          role = "stage";
          phases = group;
          state = if index == 0 then null else elemAt stages (index - 1);
          kept = phasesOf (index + 1);
          partName = "${name}-state-${toString index}-${last group}";
        }
      ) (count - 1);
      # The stage whose last phase is `phase`.
      stageAfter =
        phase:
        let
          found = filter (index: last (elemAt groups index) == phase) (genList (i: i) (count - 1));
        in
        if found == [ ] then
          throw "kiln bootstrap: mkSplit '${name}': no stage ends with phase '${phase}'"
        else
          elemAt found 0;
      final = part {
        role = "final";
        phases = last groups;
        state = if count == 1 then null else elemAt stages (count - 2);
        kept = phasesOf count;
        partName = name;
        partOutputs = outputs;
        # The user's checks, plus: no reference to a stage.
        extra.outputChecks = listToAttrs (
          map (
            output:
            let
              own = (args.outputChecks or { }).${output} or { };
            in
            {
              name = output;
              value = own // {
                disallowedReferences = (own.disallowedReferences or [ ]) ++ stages;
              };
            }
          ) outputs
        );
      };
      checkDrv =
        if check == null then
          null
        else
          let
            index = stageAfter check.after;
          in
          part {
            role = "check";
            phases = check.phases;
            state = elemAt stages index;
            kept = phasesOf (index + 1) ++ check.phases;
            partName = "${name}-check";
          };
      sourceDrv =
        if source == null then
          null
        else
          let
            index = stageAfter source.after;
          in
          part {
            role = "source";
            phases = [ ];
            state = elemAt stages index;
            kept = phasesOf (index + 1);
            partName = "${name}-source";
          };
    in
    if count == 0 then
      throw "kiln bootstrap: mkSplit '${name}': `split` needs at least one group of phases"
    else
      final // { inherit stages checkDrv sourceDrv; };

  # --- stdenv-compatible attributes: nixpkgs-style package expressions, no bash. ---------------
  #
  #   lib.stdenvDerivation {
  #     pname = "hello"; version = "2.10";
  #     src = ./hello-2.10.tar.gz;
  #     configureFlags = [ "--disable-nls" ];
  #     doCheck = true;
  #     nativeBuildInputs = [ pkgconfig ];
  #     outputs = [ "out" "dev" ];
  #   }
  #
  # Like nixpkgs' stdenv.mkDerivation, but the builder is kiln: the derivation has no `kiln`
  # attribute, so kiln translates stdenv's attributes into a plan itself (crate kiln-stdenv;
  # docs/stdenv-attributes.md lists every attribute and what kiln does with it). Here:
  #   - `name` defaults to "${pname}-${version}";
  #   - `separateDebugInfo = true` adds the `debug` output, as nixpkgs does;
  #   - `builder` is kiln and `__structuredAttrs = true` (so Nix writes .attrs.json);
  #   - `meta` and `passthru` stay out of the derivation; `passthru` is added to the result;
  #   - a multi-output dependency in `nativeBuildInputs`, `buildInputs`,
  #     `propagatedBuildInputs` or `propagatedNativeBuildInputs` stands for its `dev` output
  #     (nixpkgs' chooseDevOutputs), unless an output was picked (`zlib.out`);
  #   - `toolchain` (a list, default `[ toolchain ]`: kiln's stage-0 store toolchain, below)
  #     comes after `nativeBuildInputs`, as stdenv's compiler and initialPath do; it is not a
  #     derivation attribute. Packages that need cmake, meson, perl, python3, bash or the
  #     autotools name `tools` in `nativeBuildInputs`, as nixpkgs packages name cmake;
  #     `toolchain = [ ]` builds with only what `nativeBuildInputs` gives;
  #   - every other attribute passes through to the derivation unchanged.
  stdenvDerivation =
    {
      outputs ? [ "out" ],
      system ? builtins.currentSystem,
      toolchain ? [ stage0.toolchain ],
      ...
    }@args:
    let
      # nixpkgs' make-derivation.nix: separateDebugInfo adds the `debug` output.
      allOutputs =
        outputs
        ++ (if (args.separateDebugInfo or false) && !(builtins.elem "debug" outputs) then [ "debug" ] else [ ]);
      name =
        args.name or (
          if args ? pname && args ? version then
            "${args.pname}-${args.version}"
          else
            throw "kiln bootstrap: stdenvDerivation needs `name`, or `pname` and `version`"
        );
      clashes = builtins.filter (attr: args ? ${attr}) reserved;
      chooseDev =
        dep:
        if builtins.isAttrs dep && dep ? dev && !(dep.outputSpecified or false) then dep.dev else dep;
      depLists = [
        "nativeBuildInputs"
        "buildInputs"
        "propagatedBuildInputs"
        "propagatedNativeBuildInputs"
      ];
      deps = builtins.listToAttrs (
        map (list: {
          name = list;
          value = map chooseDev args.${list};
        }) (builtins.filter (list: args ? ${list}) depLists)
      );
      nativeBuildInputs = (deps.nativeBuildInputs or [ ]) ++ toolchain;
      attrs =
        removeAttrs args [
          "meta"
          "passthru"
          "toolchain"
        ]
        // deps
        // (if nativeBuildInputs == [ ] then { } else { inherit nativeBuildInputs; })
        // {
          inherit name system builder;
          outputs = allOutputs;
          __structuredAttrs = true;
          stdenv = devSetup;
        };
      drv = derivation attrs;
      # Each output picked explicitly (`drv.dev`) says so, as in nixpkgs.
      outputAttrs = builtins.listToAttrs (
        map (output: {
          name = output;
          value = drv.${output} // {
            outputSpecified = true;
          };
        }) allOutputs
      );
    in
    if clashes != [ ] then
      throw "kiln bootstrap: stdenvDerivation sets ${builtins.concatStringsSep ", " clashes} itself (a `kiln` attribute would make it a plain kiln plan: use mkDerivation); derivation '${name}'"
    else
      drv
      // outputAttrs
      // (args.passthru or { })
      // {
        meta = args.meta or { };
        devShell = devShellOf attrs null;
        devShellAt = devShellOf attrs;
      };

  # --- Grafts (bootstrap/graft.nix; docs/grafts.md). -----------------------------------------
  grafts = import ./graft.nix {
    inherit
      mkDerivation
      mkPlan
      builder
      refs
      ;
  };

  # --- kiln's stage-0 store toolchain (bootstrap/stage0; docs/toolchain.md). -----------------
  # Its pinned .debs must be in the store: `bash scripts/fetch-stage0-debs.sh` (evaluation says
  # so when one is missing).
  stage0 = import ./stage0 { inherit kiln; };

  # --- References, pre-escaped. ----------------------------------------------------------------
  # kiln resolves `${outputs.out}`, `${inputs.src}`, ... itself, at build time. In a Nix string
  # they would be Nix interpolations, so they must be written "\${outputs.out}"; these helpers
  # do that for you: "${refs.out}/bin" is the string `${outputs.out}/bin`.
  refs = {
    # The main output's path.
    out = "\${outputs.out}";
    # Any output's path: refs.output "dev".
    output = name: "\${outputs.${name}}";
    # An input's path: refs.input "src".
    input = name: "\${inputs.${name}}";
    # One element of a list input: refs.inputAt "libs" 0.
    inputAt = name: index: "\${inputs.${name}.${toString index}}";
    # The value of a plan environment variable: refs.env "CFLAGS".
    env = name: "\${env.${name}}";
    # The build directory (Nix's NIX_BUILD_TOP).
    top = "\${build.top}";
    # The number of cores the build may use (Nix's NIX_BUILD_CORES).
    cores = "\${build.cores}";
  };
in
{
  inherit
    mkDerivation
    mkSplit
    mkPlan
    stdenvDerivation
    refs
    builder
    stage0
    devSetup
    ;
  # replaceDependencies { drv; replacements = [ { oldDependency; newDependency; } ]; cutoffPackages; }
  # and sameLengthName: docs/grafts.md.
  inherit (grafts) replaceDependencies sameLengthName;
  # gcc/g++, binutils, libc headers, sh, coreutils, make, ...: what every build needs.
  inherit (stage0) toolchain;
  # bash, cmake, ninja, meson (python3), perl, autoconf, automake, libtool.
  inherit (stage0) tools;
}
