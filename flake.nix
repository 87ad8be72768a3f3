{
  description = "als: an Additional Layer Store for podman, buildah and CRI-O";

  # Pinned by flake.lock (a nixos-25.05 commit and its narHash).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      pkgJson = builtins.fromJSON (builtins.readFile ./package.json);

      # node_modules as `npm ci --ignore-scripts` makes it from package-lock.json: npm checks
      # every tarball against the lock's integrity hash, and the whole tree is fixed by this
      # hash (a fixed-output derivation, the only step that reaches the network). The lock
      # carries no `resolved` URLs, so nixpkgs' fetchNpmDeps and importNpmLock would fetch
      # nothing; npm itself knows where its packages live. After changing package-lock.json,
      # set the hash to lib.fakeHash, build, and paste the hash Nix prints.
      # x86_64: the NAR hash of the tree `npm ci --ignore-scripts` made from this lock on a
      # Debian machine without Nix (npm 11.19.1; nixpkgs' nodejs_20 has npm 10, whose
      # node_modules/.package-lock.json may differ): not checked by a Nix build yet.
      nodeModulesHash = {
        x86_64-linux = "sha256-GWSRDxqOspLSBRUbxl2ygZ45I3CPGQtRbwI0crgPzAU=";
        aarch64-linux = lib.fakeHash;
      };

      # The bun that package-lock.json pins (the `bun` package's platform binary, 1.4.5), so
      # the flags of package.json's "build" are those this bun knows.
      bunPackage = {
        x86_64-linux = "@oven/bun-linux-x64";
        aarch64-linux = "@oven/bun-linux-aarch64";
      };

      sources = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./bin
          ./src
          ./scripts
          ./package.json
          ./package-lock.json
          ./tsconfig.json
          (lib.fileset.maybeMissing ./contrib)
        ];
      };
    in
    {
      packages = forAll (pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;

          nodeModules = pkgs.stdenvNoCC.mkDerivation {
            pname = "als-node-modules";
            version = pkgJson.version;
            src = lib.fileset.toSource {
              root = ./.;
              fileset = lib.fileset.unions [ ./package.json ./package-lock.json ];
            };
            nativeBuildInputs = [ pkgs.nodejs_20 pkgs.cacert ];
            buildPhase = ''
              runHook preBuild
              export HOME=$TMPDIR npm_config_cache=$TMPDIR/npm-cache
              # no install scripts: bun's and deno's would download or move their binaries
              npm ci --ignore-scripts --no-audit --no-fund --loglevel=warn
              runHook postBuild
            '';
            installPhase = ''
              mv node_modules $out
            '';
            dontFixup = true; # patchShebangs would change the tree the hash fixes
            outputHashMode = "recursive";
            outputHashAlgo = "sha256";
            outputHash = nodeModulesHash.${system};
          };

          # `bun build --compile` with the flags of package.json's "build" (read from it, so the
          # two never drift), run with the pinned bun made to work on Nix.
          alsWith = { pname, script, out }: pkgs.stdenv.mkDerivation {
            inherit pname;
            version = pkgJson.version;
            src = sources;
            nativeBuildInputs = [ pkgs.autoPatchelfHook ];
            buildPhase = ''
              runHook preBuild
              cp -r ${nodeModules} node_modules
              chmod -R u+w node_modules
              bun=$PWD/node_modules/${bunPackage.${system}}/bin/bun
              chmod +x "$bun"
              autoPatchelf "$bun"
              export HOME=$TMPDIR PATH=$(dirname "$bun"):$PATH
              mkdir -p dist
              ${script}
              runHook postBuild
            '';
            installPhase = ''
              runHook preInstall
              patchShebangs scripts
              # the same layout as install.sh gives any prefix: binary, completions, man pages
              # generated from the help, the systemd units; Nix tracks the files itself
              bash scripts/install.sh --prefix $out --bin ${out}
              rm -r $out/share/als
              runHook postInstall
            '';
            # The compiled binary is bun's executable with the program appended: stripping or
            # rewriting its ELF headers would cut the program off.
            dontStrip = true;
            dontPatchELF = true;
            dontAutoPatchelf = true;
            meta = {
              description = pkgJson.description;
              license = lib.licenses.asl20;
              mainProgram = "als";
              platforms = systems;
            };
          };
        in
        {
          default = alsWith { pname = "als"; script = pkgJson.scripts.build; out = "dist/als"; };
        }
        # For x86-64 CPUs without AVX2 (older HPC nodes). bun takes the baseline runtime from the
        # npm registry at build time, which a Nix sandbox does not allow: build it outside Nix
        # with `bun run build:baseline` (see README, "Packages").
      );

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
