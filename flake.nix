{
  description = "als: an Additional Layer Store for podman, buildah and CRI-O";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      # The binary is `bun build --compile` of bin/als.ts; node_modules come from package-lock.json.
      packages = forAll (pkgs: {
        default = pkgs.stdenv.mkDerivation {
          pname = "als";
          version = "0.1.0";
          src = ./.;
          nativeBuildInputs = [ pkgs.bun pkgs.nodejs_20 ];
          # npm ci needs the dependencies in a fixed-output derivation on Nix; see importNpmLock.
          npmDeps = pkgs.importNpmLock { npmRoot = ./.; };
          buildPhase = ''
            export HOME=$TMPDIR
            npm ci --ignore-scripts --offline
            bun build --compile bin/als.ts --outfile dist/als
          '';
          installPhase = ''
            install -Dm755 dist/als $out/bin/als
          '';
          dontStrip = true; # a compiled Bun binary carries its payload after the ELF sections
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [
            bun deno nodejs_20 typescript
            podman skopeo umoci runc fuse-overlayfs
            docker-distribution # the registry the tests run on 127.0.0.1
            attr zstd
          ];
        };
      });
    };
}
