#!/usr/bin/env bash
# get-photos.sh — collect real photographs that Debian (bookworm) packages ship,
# as the sharp source material for synthetic blurry/sharp training pairs
# (GoPro itself cannot be downloaded).
#
#   scripts/get-photos.sh            # installs missing packages (root), fills data/photos/{train,val}
#   MSDI_PHOTOS_DIR=/x scripts/get-photos.sh   # other output folder
#
# The curated list and its fixed train/val split live in scripts/photo-split.txt.
# Sources (all real photographs; drawings/renders/gradients were left out):
#   lomiri-wallpapers-16.04, lomiri-wallpapers-20.04   /usr/share/backgrounds/*.jpg
#   mate-backgrounds                                   /usr/share/backgrounds/mate/nature/
#   lxqt-themes                                        /usr/share/lxqt/wallpapers/
#   plasma-workspace-wallpapers                        /usr/share/wallpapers/*/contents/images/
#   opencv-doc (sample images)                         /usr/share/doc/opencv-doc/examples/
#   kphotoalbum (demo photos)                          /usr/share/kphotoalbum/demo/
#   libjxl-testdata, labelme-examples, libdlib19.1,    one to three test or example
#   gdk-pixbuf-tests                                   photographs each
# opencv-doc installs ~270 MB of HTML (plus MathJax) for a dozen photos, and the
# others are whole applications, libraries or test suites, so none of them is
# installed: each .deb is fetched with `apt-get download` (~185 MB together) and
# only the listed files are extracted into $OUT/.pkg/. The wallpaper packages are
# apt-installed (~195 MB installed, --no-install-recommends).
#
# Idempotent: re-running installs nothing new, copies only changed files and
# removes files in train/ and val/ that are no longer in the split list.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPLIT="$ROOT/scripts/photo-split.txt"
OUT="${MSDI_PHOTOS_DIR:-$ROOT/data/photos}"
CACHE="$OUT/.pkg"

INSTALL_PKGS=(
  lomiri-wallpapers-16.04
  lomiri-wallpapers-20.04
  mate-backgrounds
  lxqt-themes
  plasma-workspace-wallpapers
)
# package -> path prefix of the files we take from it without installing it
declare -A EXTRACT_PKGS=(
  [opencv-doc]=/usr/share/doc/opencv-doc/
  [kphotoalbum]=/usr/share/kphotoalbum/
  [libjxl-testdata]=/usr/share/libjxl-testdata/
  [labelme-examples]=/usr/share/doc/labelme-examples/
  [libdlib19.1]=/usr/share/doc/libdlib19.1/
  [gdk-pixbuf-tests]=/usr/libexec/installed-tests/gdk-pixbuf/
)

log() { printf '[get-photos] %s\n' "$*" >&2; }
die() { printf '[get-photos] error: %s\n' "$*" >&2; exit 1; }

[[ -f "$SPLIT" ]] || die "missing $SPLIT"

# ---- read the split list ---------------------------------------------------
SPLITS=()
PATHS=()
while read -r split path rest; do
  [[ -z "${split:-}" || "$split" == \#* ]] && continue
  [[ "$split" == train || "$split" == val ]] || die "bad split '$split' in $SPLIT"
  [[ -n "${path:-}" && -z "${rest:-}" ]] || die "bad line in $SPLIT: $split $path $rest"
  SPLITS+=("$split")
  PATHS+=("$path")
done < "$SPLIT"
(( ${#PATHS[@]} > 0 )) || die "no photos listed in $SPLIT"

# ---- install the wallpaper packages when missing -------------------------
is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}
missing=()
for p in "${INSTALL_PKGS[@]}"; do is_installed "$p" || missing+=("$p"); done
if (( ${#missing[@]} > 0 )); then
  if [[ $EUID -ne 0 ]]; then
    die "packages not installed: ${missing[*]}
  run this script as root, or first: sudo apt-get install --no-install-recommends ${missing[*]}"
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    log "install failed; running apt-get update and retrying"
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
fi

# ---- extract the few files needed from packages we do not install --------
resolve() { # absolute package path -> readable file (system, else extract cache), or nothing
  if [[ -f "$1" ]]; then printf '%s' "$1"
  elif [[ -f "$CACHE$1" ]]; then printf '%s' "$CACHE$1"
  fi
}
for pkg in "${!EXTRACT_PKGS[@]}"; do
  prefix="${EXTRACT_PKGS[$pkg]}"
  want=()
  for path in "${PATHS[@]}"; do
    [[ "$path" == "$prefix"* && -z "$(resolve "$path")" ]] && want+=(".$path")
  done
  (( ${#want[@]} == 0 )) && continue
  log "extracting ${#want[@]} files from $pkg (apt-get download, not installed)"
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"
  if [[ $EUID -eq 0 ]]; then chown _apt "$tmp" 2>/dev/null || true; fi  # apt's download sandbox user
  if ! (cd "$tmp" && apt-get download -q "$pkg" >&2); then
    if [[ $EUID -eq 0 ]]; then
      apt-get update -q >&2
      (cd "$tmp" && apt-get download -q "$pkg" >&2) || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
    else
      rm -rf "$tmp"; die "apt-get download $pkg failed (try 'apt-get update' as root)"
    fi
  fi
  debs=("$tmp"/*.deb)
  deb="${debs[0]}"
  [[ -f "$deb" ]] || { rm -rf "$tmp"; die "apt-get download $pkg produced no .deb"; }
  mkdir -p "$CACHE"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$CACHE" "${want[@]}" \
    || { rm -rf "$tmp"; die "could not extract files from $deb"; }
  rm -rf "$tmp"
done

# ---- copy into train/ and val/ ------------------------------------------------
dest_name() { # /usr/share/wallpapers/Path/contents/images/2560x1600.jpg -> wallpapers_Path_2560x1600.jpg
  local n="${1#/usr/share/}"
  n="${n#/usr/libexec/installed-tests/}"
  n="${n/\/contents\/images\//\/}"
  n="${n/doc\/opencv-doc\/examples\//opencv_}"
  n="${n/doc\/labelme-examples\/examples\/tutorial\//labelme_}"
  n="${n/doc\/libdlib19.1\/examples\/faces\//dlib_}"
  n="${n/doc\/libdlib19.1\/examples\//dlib_}"
  n="${n/gdk-pixbuf\/test-images\/reftests\//gdk-pixbuf_}"
  n="${n/libjxl-testdata\/jxl\/flower\//libjxl_}"
  n="${n/kphotoalbum\/demo\//kphotoalbum_}"
  printf '%s' "${n//\//_}"
}
mkdir -p "$OUT/train" "$OUT/val"
declare -A KEEP=()
copied=0
for i in "${!PATHS[@]}"; do
  path="${PATHS[$i]}"; split="${SPLITS[$i]}"
  src="$(resolve "$path")"
  [[ -n "$src" ]] || die "listed photo not found after install/extract: $path"
  name="$(dest_name "$path")"
  [[ -z "${KEEP[$name]:-}" ]] || die "two listed photos map to the same name: $name"
  KEEP[$name]="$split"
  dst="$OUT/$split/$name"
  if [[ ! -f "$dst" ]] || ! cmp -s "$src" "$dst"; then
    cp -f "$src" "$dst.tmp.$$" && chmod 644 "$dst.tmp.$$" && mv -f "$dst.tmp.$$" "$dst"
    copied=$((copied + 1))
  fi
done
removed=0
for split in train val; do
  for f in "$OUT/$split"/*; do
    [[ -e "$f" ]] || continue
    name="$(basename "$f")"
    if [[ "${KEEP[$name]:-}" != "$split" ]]; then rm -f "$f"; removed=$((removed + 1)); fi
  done
done

ntrain="$(find "$OUT/train" -maxdepth 1 -type f | wc -l)"
nval="$(find "$OUT/val" -maxdepth 1 -type f | wc -l)"
log "copied $copied, removed $removed; $OUT/train: $ntrain photos, $OUT/val: $nval photos"

# ---- sanity check: every photo decodes and has a short side >= 512 px -----
if [[ -d "$ROOT/node_modules/sharp" ]]; then
  # shellcheck disable=SC2016  # JavaScript template literals, not shell expansions
  (cd "$ROOT" && OUT="$OUT" node --input-type=module -e '
    import sharp from "sharp";
    import { readdirSync } from "node:fs";
    let bad = 0, minSide = Infinity;
    for (const split of ["train", "val"]) {
      for (const f of readdirSync(`${process.env.OUT}/${split}`)) {
        const m = await sharp(`${process.env.OUT}/${split}/${f}`).metadata();
        const s = Math.min(m.width ?? 0, m.height ?? 0);
        minSide = Math.min(minSide, s);
        if (s < 512) { console.error(`[get-photos] too small: ${split}/${f} (${m.width}x${m.height})`); bad++; }
      }
    }
    console.error(`[get-photos] all photos decode; smallest short side ${minSide} px`);
    process.exit(bad ? 1 : 0);
  ')
fi
