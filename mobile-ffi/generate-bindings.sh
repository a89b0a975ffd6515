#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of tournee-mobile-ffi from the built library.
#
#   bash mobile-ffi/generate-bindings.sh [OUT_DIR]     (default: target/bindings)
#
# Builds the library for the host (debug), then runs the workspace's pinned uniffi-bindgen in
# library mode, so the bindings match the scaffolding compiled into the library. OUT_DIR gets
# kotlin/, swift/ and python/; python/ also gets a copy of the host library so the module
# imports as is. Set PROFILE=release for a release build. Bindings do not depend on the target:
# generate them once on the host and ship them with the Android or iOS libraries.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/target/bindings}"
profile="${PROFILE:-debug}"
cd "$root"

if [[ "$profile" == "release" ]]; then
  cargo build --locked -p tournee-mobile-ffi --lib --release
else
  cargo build --locked -p tournee-mobile-ffi --lib
fi
cargo build --locked -p uniffi-bindgen

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
  Darwin) library="$target_dir/$profile/libtournee_mobile_ffi.dylib" ;;
  *) library="$target_dir/$profile/libtournee_mobile_ffi.so" ;;
esac
bindgen="$target_dir/debug/uniffi-bindgen"

swift_module=TourneeField # [bindings.swift] module_name in mobile-ffi/uniffi.toml

rm -rf "$out/kotlin" "$out/swift" "$out/python"
mkdir -p "$out/kotlin" "$out/swift" "$out/python"
for language in kotlin swift python; do
  "$bindgen" generate --library "$library" --language "$language" --out-dir "$out/$language" \
    --no-format
done

# uniffi 0.32 writes the cases of Swift error enums in UpperCamelCase (mozilla/uniffi-rs#2262,
# no option for it yet) while every other Swift enum's cases are lowerCamelCase. Rename them,
# declarations and uses, so Swift code reads `catch TourneeError.invalidInput(let field, ...)`;
# a case that becomes a Swift keyword (`protocol`) is declared in backquotes. perl, not sed -i,
# so the same command runs on macOS and Linux. tests/sdk_bindings.rs checks the result.
perl -0pi -e '
  my %keyword = map { $_ => 1 } qw(associatedtype as break case catch class continue default
    defer deinit do else enum extension fallthrough false fileprivate for func guard if import
    in init inout internal is let nil open operator private protocol public repeat rethrows
    return self static struct subscript super switch throw throws true try typealias var where
    while);
  my @cases;
  while (/^public\s+(?:indirect\s+)?enum\s+\w+:\s*Swift\.Error\b[^{]*\{(.*?)^\}/msg) {
    push @cases, ($1 =~ /^\s*case\s+([A-Z]\w*)/mg);
  }
  for my $case (@cases) {
    my $lower = lcfirst $case;
    my $declared = $keyword{$lower} ? "`$lower`" : $lower;
    s/^(\s*case\s+)$case\b/$1$declared/mg;
    s/\.$case\b/.$declared/g;
  }
' "$out/swift/$swift_module.swift"

cp "$library" "$out/python/"
echo "bindings written to $out (kotlin/, swift/, python/)"
