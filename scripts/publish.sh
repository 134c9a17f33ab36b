#!/usr/bin/env bash
# Publishes distsgd as one self-contained executable for linux-x64: the .NET runtime, every library and the native
# libraries (plotting; libsodium for the TLS data plane's records) inside one file (plus data/fashion-mnist-sample/,
# the bundled sample, next to it), so that a machine without the .NET SDK or runtime runs it: copy the folder, run ./distsgd.
# Usage: scripts/publish.sh [--no-ready-to-run] [OUT]   (default dist/linux-x64)
#   --no-ready-to-run  IL only, JIT-compiled at the first call of each method (a slower first epoch): about a third of
#                      the publish time, for checking that the file runs (PublishedProgramTests), not for shipping.
# Then, e.g.: OUT/distsgd train --dataset blobs --samples 600 --epochs 2 --hidden 16 --out runs/published
#             OUT/distsgd node --host 10.0.0.2 --seed-nodes 10.0.0.1:4053 --workers 2 …   (README, "A cluster of separate processes")
# The native libraries are unpacked at the first start into $DOTNET_BUNDLE_EXTRACT_BASE_DIR (default ~/.net); set it
# to a writable folder where the home directory is not.
set -euo pipefail
cd "$(dirname "$0")/.."
ready_to_run=true
if [ "${1:-}" = "--no-ready-to-run" ]; then
  ready_to_run=false
  shift
fi
out=${1:-dist/linux-x64}
# Its own build folders (bin/Release/net10.0/linux-x64, obj/…/linux-x64): the self-contained build must not mix
# with the framework-dependent one that `dotnet …/distsgd.dll` runs. ReadyToRun as the Release build (decision 0069),
# but not composite: the framework's assemblies come precompiled already (composite ran crossgen for over 17 minutes).
# No XML documentation next to the file: it is for the compiler, not for running.
dotnet publish src/Host -c Release -r linux-x64 --self-contained true \
  -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true \
  -p:PublishReadyToRun=$ready_to_run -p:PublishReadyToRunComposite=false \
  -p:PublishDocumentationFile=false -p:PublishReferencesDocumentationFiles=false \
  -p:AppendRuntimeIdentifierToOutputPath=true -p:DebugType=none -o "$out" >&2
ls -la "$out/distsgd" >&2
echo "$out/distsgd"
