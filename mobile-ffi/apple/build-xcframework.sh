#!/usr/bin/env bash
# Builds what Package.swift (at the repository root) points to, on macOS with Xcode:
#   mobile-ffi/apple/build/TourneeFieldFFI.xcframework    the static library of the crate
#       tournee-mobile-ffi for iOS devices (aarch64-apple-ios) and the simulators
#       (aarch64-apple-ios-sim and x86_64-apple-ios, joined by lipo), with the C header and
#       module map that uniffi generates (module TourneeFieldFFI);
#   mobile-ffi/apple/Sources/TourneeField/TourneeField.swift    the Swift bindings.
#
#   bash mobile-ffi/apple/build-xcframework.sh        (PROFILE=debug for a debug build)
#
# Needs Rust with the three targets (rustup target add aarch64-apple-ios aarch64-apple-ios-sim
# x86_64-apple-ios), Xcode's command-line tools (xcodebuild, lipo) and bash. It cannot run on
# Linux: Apple's SDKs and xcodebuild exist only on macOS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
apple="$root/mobile-ffi/apple"
build="$apple/build"
profile="${PROFILE:-release}"
module=TourneeField # [bindings.swift] module_name in mobile-ffi/uniffi.toml
library=libtournee_mobile_ffi.a
device=aarch64-apple-ios
simulators=(aarch64-apple-ios-sim x86_64-apple-ios)

if [[ "$(uname -s)" != Darwin ]] || ! command -v xcodebuild >/dev/null; then
  echo "build-xcframework.sh needs macOS with Xcode (xcodebuild, lipo, the iOS SDKs)" >&2
  exit 1
fi
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# The Swift bindings, header and module map, generated from the host build of the same crate.
bash "$root/mobile-ffi/generate-bindings.sh" "$build/bindings"
mkdir -p "$apple/Sources/$module" "$build/headers"
cp "$build/bindings/swift/$module.swift" "$apple/Sources/$module/"
cp "$build/bindings/swift/${module}FFI.h" "$build/headers/"
cp "$build/bindings/swift/${module}FFI.modulemap" "$build/headers/module.modulemap"

# The static library for each Apple target.
flags=(--locked -p tournee-mobile-ffi --lib --crate-type staticlib)
if [[ "$profile" == "release" ]]; then flags+=(--release); fi
for target in "$device" "${simulators[@]}"; do
  cargo rustc "${flags[@]}" --target "$target"
done

# One library per platform: the simulators' two architectures joined.
mkdir -p "$build/ios-simulator"
lipo -create \
  "$target_dir/${simulators[0]}/$profile/$library" \
  "$target_dir/${simulators[1]}/$profile/$library" \
  -output "$build/ios-simulator/$library"

rm -rf "$build/${module}FFI.xcframework"
xcodebuild -create-xcframework \
  -library "$target_dir/$device/$profile/$library" -headers "$build/headers" \
  -library "$build/ios-simulator/$library" -headers "$build/headers" \
  -output "$build/${module}FFI.xcframework"
echo "written: $build/${module}FFI.xcframework and $apple/Sources/$module/$module.swift"
