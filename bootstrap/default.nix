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
    } args;

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
      passThrough = removeAttrs args [
        "plan"
        "phases"
        "inputs"
        "env"
      ];
    in
    if clashes != [ ] then
      throw "kiln bootstrap: mkDerivation sets ${builtins.concatStringsSep ", " clashes} itself; do not pass ${
        if builtins.length clashes == 1 then "it" else "them"
      } (derivation '${name}')"
    else
      derivation (
        passThrough
        // {
          inherit name outputs system builder;
          __structuredAttrs = true;
          kiln = mkPlan args;
        }
      );

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
    mkPlan
    refs
    builder
    ;
}
