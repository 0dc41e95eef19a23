# Grafts: a package's runtime closure with some dependencies replaced, without rebuilding it
# (nixpkgs' replaceDependencies, Guix's grafts), on kiln's `graft` step. docs/grafts.md.
#
#   lib.replaceDependencies {
#     drv = app;                                   # what to graft
#     replacements = [ { oldDependency = zlib; newDependency = zlib-fixed; } ];
#     cutoffPackages = [ ];                        # paths whose references are left alone
#   }
#
# How the derivations are formed: one derivation (`NAME-references`) asks Nix for the
# references graph of `drv`'s closure (`exportReferencesGraph` with structured attributes:
# Nix writes the graph into `.attrs.json`, which kiln copies out); evaluation reads it back
# (import from derivation). Then every store path of the closure that depends, directly or
# through others, on an old dependency gets a derivation of its own: a `graft` step copying it
# with each changed reference (an old dependency, or a path grafted before it) replaced, and
# its references to itself pointed at the copy. A graft has the original's name, so its path has
# the same length. Paths that depend on no old dependency, and `cutoffPackages`, stay as they
# are. Multiple outputs are separate store paths in the graph and are grafted separately.
{
  mkDerivation,
  mkPlan,
  builder,
  refs,
}:
let
  inherit (builtins)
    baseNameOf
    elem
    filter
    listToAttrs
    mapAttrs
    stringLength
    substring
    unsafeDiscardStringContext
    ;
  plain = value: unsafeDiscardStringContext (toString value);
  # `HASH-NAME` → `NAME`.
  nameOf =
    path:
    let
      base = baseNameOf path;
    in
    substring 33 (stringLength base - 33) base;

  # The runtime closure of `drv` with each path's references, from Nix.
  referencesGraph =
    drv:
    let
      graphDrv = mkDerivation {
        name = "${nameOf (plain drv)}-references";
        exportReferencesGraph.closure = [ drv ];
        phases = [
          {
            name = "install";
            steps = [
              {
                copy = {
                  from = "${refs.top}/.attrs.json";
                  to = refs.out;
                };
              }
            ];
          }
        ];
      };
    in
    # The graph names store paths; each graft takes its own with builtins.storePath.
    (builtins.fromJSON (unsafeDiscardStringContext (builtins.readFile graphDrv))).closure;

  # A copy of `path` with `replace` (old store path → new one) applied.
  graftOne =
    path: replace:
    derivation {
      name = nameOf path;
      system = builtins.currentSystem;
      inherit builder;
      __structuredAttrs = true;
      kiln = mkPlan {
        name = "graft-${nameOf path}";
        phases = [
          {
            name = "graft";
            steps = [
              {
                graft = {
                  from = builtins.storePath path;
                  to = refs.out;
                  inherit replace;
                };
              }
            ];
          }
        ];
      };
    };

  # Refuses a replacement whose path differs in length, saying by how much.
  checkLength =
    { oldDependency, newDependency }:
    let
      old = plain oldDependency;
      new = plain newDependency;
      difference = stringLength new - stringLength old;
    in
    if difference == 0 then
      true
    else
      throw "kiln replaceDependencies: `${new}` is ${toString (if difference > 0 then difference else -difference)} character${
        if difference == 1 || difference == -1 then "" else "s"
      } ${if difference > 0 then "longer" else "shorter"} than `${old}`, which it replaces; a graft keeps every path's length, so give the fixed package a name of the same length as `${nameOf old}` (${
        if difference > 0 then "remove" else "add"
      } ${toString (if difference > 0 then difference else -difference)} character${
        if difference == 1 || difference == -1 then "" else "s"
      }, e.g. with `sameLengthName`)";
in
{
  # `name` cut or padded with `-` to the length of `like`: a name for the fixed package of a
  # graft. sameLengthName "zlib-1.3.1" "zlib-1.3.1-p1" is "zlib-1.3.1"; sameLengthName
  # "zlib-1.3.1" "zlib-2" is "zlib-2----". A name chosen by hand reads better where you can.
  sameLengthName =
    like: name:
    let
      want = stringLength like;
      have = stringLength name;
      pad = n: if n <= 0 then "" else "-" + pad (n - 1);
    in
    if have >= want then substring 0 want name else name + pad (want - have);

  replaceDependencies =
    {
      drv,
      replacements,
      cutoffPackages ? [ ],
    }:
    let
      checked = builtins.all checkLength replacements;
      graph = referencesGraph drv;
      referencesOf = listToAttrs (
        map (entry: {
          name = entry.path;
          value = entry.references;
        }) graph
      );
      replacementOf = listToAttrs (
        map (r: {
          name = plain r.oldDependency;
          value = r.newDependency;
        }) replacements
      );
      cutoff = map plain cutoffPackages;
      # Path → its graft, or null when it keeps its path.
      grafted = mapAttrs (
        path: references:
        if replacementOf ? ${path} || elem path cutoff then
          null
        else
          let
            changed = filter (ref: ref != path && rewritten.${ref} != ref) references;
            replace = listToAttrs (
              map (ref: {
                name = ref;
                value = rewritten.${ref};
              }) changed
              ++ (
                if elem path references then
                  [
                    {
                      name = path;
                      value = refs.out;
                    }
                  ]
                else
                  [ ]
              )
            );
          in
          if changed == [ ] then null else graftOne path replace
      ) referencesOf;
      # Path → the path that stands for it in the grafted closure.
      rewritten = mapAttrs (
        path: _:
        if replacementOf ? ${path} then
          toString replacementOf.${path}
        else if grafted.${path} == null then
          path
        else
          grafted.${path}.outPath
      ) referencesOf;
      top = plain drv;
    in
    assert checked;
    if grafted.${top} == null then drv else grafted.${top};
}
