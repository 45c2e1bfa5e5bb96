#!/usr/bin/env bash
# Real photographs for the image-resize benchmark (benches/compare/images.py), taken from
# Debian's wallpaper packages: nothing is downloaded from anywhere but the Debian archive, and
# nothing is installed from those packages (they are only unpacked with dpkg-deb -x into a
# temporary directory).
#
#   datasets/photos.sh                 # all 31 photos into datasets/photos/
#   datasets/photos.sh --tiny 6        # the first 6 of the list into datasets/photos-tiny/
#   datasets/photos.sh --out DIR       # somewhere else
#   datasets/photos.sh --force         # rebuild even when the directory is complete
#
# What it makes: JPEG photographs of 4-20 megapixels, the original bitstreams from the
# packages, about half of them progressive and half baseline. Where a file's shipped encoding
# is not the one wanted it is transcoded losslessly with jpegtran (-copy all keeps EXIF, ICC
# and comments); no pixel is decoded and re-encoded. MANIFEST.tsv lists every file with its
# source package, version, path in the package, licence, author, size, encoding and sha256;
# licences/ holds each source package's copyright file (and, for Plasma wallpapers, the
# metadata.json that states the wallpaper's licence), which the licences require to travel
# with the files.
#
# The list below is curated by hand: these packages hold illustrations too, and "is this a
# photograph" is not something a script can decide. For each entry the script checks, in
# the package it just downloaded, that the licence is still the one written here (a DEP-5
# `Files:` stanza of usr/share/doc/PKG/copyright, or `KPlugin.License` of a Plasma
# wallpaper's metadata.json) and that the photo is at least 3 megapixels; any mismatch stops
# the script. Only these licences are accepted: CC0-1.0, CC-BY-4.0, CC-BY-SA-3.0,
# CC-BY-SA-4.0, GPL-2+, LGPLv3 (all allow redistribution, with attribution and, for the
# share-alike and GPL ones, the same licence on derived files).
#
# Idempotent: a directory whose .complete stamp matches this recipe and whose files match
# MANIFEST.tsv (names and sizes) is left alone. Otherwise the set is built in a temporary
# directory next to the target and moved into place only when complete. Temporary files are
# removed on any exit. Missing tools (jpegtran, djpeg, file) are installed with apt-get when
# running as root; otherwise the script says what to install.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/photos"
tiny=""
force=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) tiny="${2:?--tiny needs a count}"; shift 2 ;;
    --tiny=*) tiny="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --force) force=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "photos.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$tiny" ]; then
  case "$tiny" in '' | *[!0-9]* | 0) echo "photos.sh: --tiny takes a positive count" >&2; exit 2 ;; esac
  [ "$out" = "$here/photos" ] && out="$here/photos-tiny"
fi

say() { printf 'photos.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# The photographs. One per line, tab-separated:
#   output name | package | path inside the package | licence | author (from the copyright
#   file or metadata.json)
# Ordered so that `--tiny N` with N <= 13 needs only the smallest package (15 MB).
# ---------------------------------------------------------------------------------------------
PHOTOS="$(cat <<'EOF'
lomiri-Bridge_by_Sander_Klootwijk.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg	CC-BY-SA-4.0	Sander Klootwijk
lomiri-aitzgorri_by_Aitzol_Berasategi.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg	CC-BY-4.0	Aitzol Berasategi
lomiri-Dragonfly_by_Bolly.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/Dragonfly_by_Bolly.jpg	CC-BY-SA-4.0	"Bolly"
lomiri-free_by_Peter_Nerlich.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/free_by_Peter_Nerlich.jpg	CC-BY-SA-4.0	Peter Nerlich
lomiri-Wine_by_Jakkub_Mede.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/Wine_by_Jakkub_Mede.jpg	CC-BY-4.0	Jakub Mede
lomiri-analogpattern_by_Peter_Nerlich.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/analogpattern_by_Peter_Nerlich.jpg	CC-BY-SA-4.0	Peter Nerlich
lomiri-seeding_by_Clements_Engelhardt.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/seeding_by_Clements_Engelhardt.jpg	CC0-1.0	Clemens Engelhardt
lomiri-friends_by_Aitzol_Berasategi.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/friends_by_Aitzol_Berasategi.jpg	CC-BY-4.0	Aitzol Berasategi
lomiri-greentock_by_Peter_Nerlich.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/greentock_by_Peter_Nerlich.jpg	CC-BY-SA-4.0	Peter Nerlich
lomiri-life_by_Aitzol_Berasategi.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg	CC-BY-4.0	Aitzol Berasategi
lomiri-Picture_0B_by_freespace.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/Picture_0B_by_freespace.jpg	CC-BY-4.0	Trevor "Freespace"
lomiri-picosdeeuropa_by_Aitzol_Berasategi.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg	CC-BY-4.0	Aitzol Berasategi
lomiri-sunset_by_Aitzol_Berasategi.jpg	lomiri-wallpapers-16.04	usr/share/backgrounds/sunset_by_Aitzol_Berasategi.jpg	CC-BY-4.0	Aitzol Berasategi
lomiri-Kleiber_by_Lukas_Baubkus.jpg	lomiri-wallpapers-20.04	usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg	CC-BY-SA-3.0	Lukas Baubkus
mate-Aqua.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/Aqua.jpg	GPL-2+	Charles Barbin
mate-Garden.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/Garden.jpg	GPL-2+	Charles Barbin
mate-LadyBird.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/LadyBird.jpg	GPL-2+	Charles Barbin
mate-TwoWings.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/TwoWings.jpg	GPL-2+	Charles Barbin, Hylke Bons
mate-Wood.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/Wood.jpg	GPL-2+	Jean-François Fortin Tam
mate-YellowFlower.jpg	mate-backgrounds	usr/share/backgrounds/mate/nature/YellowFlower.jpg	GPL-2+	Charles Barbin
plasma-BytheWater.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg	LGPLv3	Maciej Wiklo
plasma-ColdRipple.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/ColdRipple/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
plasma-ColorfulCups.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg	LGPLv3	Dmitri Popov
plasma-DarkestHour.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/DarkestHour/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
plasma-EveningGlow.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg	LGPLv3	Ian Hex
plasma-FallenLeaf.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/FallenLeaf/contents/images/2560x1600.jpg	LGPLv3	Martin Klapetek
plasma-Grey.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/Grey/contents/images/2560x1600.jpg	LGPLv3	Sigi Sagi
plasma-Kite.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/Kite/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
plasma-OneStandsOut.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/OneStandsOut/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
plasma-Path.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/Path/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
plasma-summer_1am.jpg	plasma-workspace-wallpapers	usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg	LGPLv3	Risto Saukonpää
EOF
)"
ALLOWED_LICENCES=" CC0-1.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 GPL-2+ LGPLv3 "
MIN_MEGAPIXELS=3
RECIPE_VERSION=1 # bump when the way files are made changes

if [ -n "$tiny" ]; then
  total=$(printf '%s\n' "$PHOTOS" | wc -l)
  [ "$tiny" -le "$total" ] || die "--tiny $tiny: only $total photos are listed"
  PHOTOS="$(printf '%s\n' "$PHOTOS" | head -n "$tiny")"
fi
# Every other photo progressive, in list order: any prefix (--tiny) is half and half too.
recipe="$( (printf 'v%s\n' "$RECIPE_VERSION"; printf '%s\n' "$PHOTOS") | sha256sum | cut -c1-16)"

# ---------------------------------------------------------------------------------------------
# Summary of a finished directory, from its manifest
# ---------------------------------------------------------------------------------------------
summary() {
  awk -F'\t' -v dir="$1" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    {
      n++; bytes += $col["bytes"]; mp = $col["megapixels"] + 0
      if (n == 1 || mp < lo) lo = mp
      if (n == 1 || mp > hi) hi = mp
      enc[$col["encoding"]]++
      if (!($col["package"] in pkg)) order[++npkg] = $col["package"]
      pkg[$col["package"]]++
    }
    END {
      printf "%s: %d photos, %.1f MB, %.1f-%.1f megapixels, %d progressive / %d baseline\n",
        dir, n, bytes / 1e6, lo, hi, enc["progressive"], enc["baseline"]
      for (k = 1; k <= npkg; k++) printf "  %2d from %s\n", pkg[order[k]], order[k]
    }' "$1/MANIFEST.tsv"
}

# Complete: stamp matches the recipe and every manifest entry exists with its recorded size.
is_complete() {
  local dir="$1" name size
  [ -f "$dir/.complete" ] && [ -f "$dir/MANIFEST.tsv" ] || return 1
  [ "$(cat "$dir/.complete")" = "$recipe" ] || return 1
  [ "$(($(wc -l <"$dir/MANIFEST.tsv") - 1))" = "$(printf '%s\n' "$PHOTOS" | wc -l)" ] || return 1
  while IFS=$'\t' read -r name size; do
    [ -f "$dir/$name" ] && [ "$(stat -c %s "$dir/$name")" = "$size" ] || return 1
  done < <(awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                       { print $c["file"] "\t" $c["bytes"] }' "$dir/MANIFEST.tsv")
}

if [ "$force" = 0 ] && is_complete "$out"; then
  say "complete, nothing to do"
  summary "$out"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
need=()
have jpegtran || need+=(libjpeg-turbo-progs)
have djpeg || need+=(libjpeg-turbo-progs)
have file || need+=(file)
have sha256sum || need+=(coreutils)
have apt-get && have dpkg-deb || die "needs apt-get and dpkg-deb (a Debian or Ubuntu system)"
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  if [ "$(id -u)" = 0 ]; then
    say "installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    die "missing tools: install ${need[*]} (apt-get install ${need[*]})"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Work directories, removed on every exit
# ---------------------------------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
work="$(mktemp -d "${TMPDIR:-/tmp}/shmframe-photos.XXXXXX")"
stage="$(mktemp -d "$(dirname "$out")/.$(basename "$out").partial.XXXXXX")"
cleanup() { rm -rf "$work" "$stage"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Download and unpack the packages (never installed)
# ---------------------------------------------------------------------------------------------
mapfile -t packages < <(printf '%s\n' "$PHOTOS" | cut -f2 | awk '!seen[$0]++')
if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "apt does not know ${packages[*]}: run apt-get update (as root)"
  say "apt-get update"
  apt-get update -qq
fi
# As root, apt's download sandbox user (_apt) cannot write into our private temp directory.
apt_opts=()
[ "$(id -u)" = 0 ] && apt_opts=(-o APT::Sandbox::User=root)
say "downloading ${packages[*]}"
(cd "$work" && apt-get download -q=2 "${apt_opts[@]}" "${packages[@]}")
declare -A version
for p in "${packages[@]}"; do
  deb=$(ls "$work/${p}_"*.deb)
  version[$p]="$(dpkg-deb -f "$deb" Version)"
  mkdir -p "$work/x/$p"
  dpkg-deb -x "$deb" "$work/x/$p"
  rm -f "$deb"
  say "  $p ${version[$p]}"
done

# The licence of a file according to a DEP-5 copyright file: the License of the stanza whose
# Files list names it. Upstream paths differ from installed ones (lomiri's "16.04/X.jpg" is
# installed as usr/share/backgrounds/X.jpg), so names are compared by their last component;
# the list's names are unique in their packages' copyright files.
dep5_licence() {
  awk -v want="${2##*/}" '
    BEGIN { RS = ""; FS = "\n" }
    {
      in_files = 0; hit = 0; lic = ""
      for (i = 1; i <= NF; i++) {
        line = $i
        if (line ~ /^Files:/) { in_files = 1; sub(/^Files:[ \t]*/, "", line) }
        else if (line ~ /^[^ \t]/) in_files = 0
        if (in_files) {
          n = split(line, tok, /[ \t]+/)
          for (j = 1; j <= n; j++) {
            t = tok[j]
            if (t == "") continue
            sub(/.*\//, "", t)
            if (t == want) hit = 1
          }
        }
        if ($i ~ /^License:/) { lic = $i; sub(/^License:[ \t]*/, "", lic) }
      }
      if (hit) { print lic; exit }
    }' "$1"
}

# The licence of a Plasma wallpaper: KPlugin.License in its metadata.json.
plasma_licence() {
  sed -n 's/^ *"License": *"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

# "progressive|baseline W H components" of a JPEG, from file(1).
jpeg_info() {
  file -b "$1" | sed -n 's/.*\(baseline\|progressive\), precision [0-9]*, \([0-9]*\)x\([0-9]*\), components \([0-9]*\).*/\1 \2 \3 \4/p'
}

# ---------------------------------------------------------------------------------------------
# Select, check, transcode where needed, record
# ---------------------------------------------------------------------------------------------
mkdir -p "$stage/licences"
manifest="$stage/MANIFEST.tsv"
printf 'file\tpackage\tversion\tpath_in_package\tlicence\tlicence_stated_in\tauthor\twidth\theight\tmegapixels\tbytes\tencoding\tmade_by\tsha256\n' >"$manifest"
i=0
while IFS=$'\t' read -r name pkg path licence author; do
  src="$work/x/$pkg/$path"
  [ -f "$src" ] || die "$pkg ${version[$pkg]} has no $path any more: update the list"
  case "$ALLOWED_LICENCES" in *" $licence "*) ;; *) die "$name: licence $licence is not on the allowed list" ;; esac

  copyright="$work/x/$pkg/usr/share/doc/$pkg/copyright"
  [ -f "$copyright" ] || die "$pkg has no usr/share/doc/$pkg/copyright"
  [ -f "$stage/licences/$pkg.copyright" ] || cp "$copyright" "$stage/licences/$pkg.copyright"
  if [ "$pkg" = plasma-workspace-wallpapers ]; then
    meta="$work/x/$pkg/${path%%/contents/*}/metadata.json"
    found="$(plasma_licence "$meta")"
    stated="${path%%/contents/*}/metadata.json (KPlugin.License)"
    wp="$(basename "${path%%/contents/*}")"
    cp "$meta" "$stage/licences/$pkg.$wp.metadata.json"
  else
    found="$(dep5_licence "$copyright" "$path")"
    stated="usr/share/doc/$pkg/copyright"
  fi
  [ "$found" = "$licence" ] ||
    die "$name: $stated says licence '${found:-none}', the list says '$licence': check it and update the list"

  read -r enc w h comps < <(jpeg_info "$src") || die "$name: not a JPEG file(1) understands"
  mp=$(awk -v w="$w" -v h="$h" 'BEGIN { printf "%.2f", w * h / 1e6 }')
  awk -v mp="$mp" -v min="$MIN_MEGAPIXELS" 'BEGIN { exit !(mp >= min) }' ||
    die "$name: $mp megapixels, below $MIN_MEGAPIXELS"

  want=progressive
  [ $((i % 2)) = 1 ] && want=baseline
  dst="$stage/$name"
  if [ "$enc" = "$want" ]; then
    cp "$src" "$dst"
    made="as shipped"
  elif [ "$want" = progressive ]; then
    jpegtran -copy all -progressive -outfile "$dst" "$src"
    made="jpegtran -copy all -progressive"
  else
    jpegtran -copy all -outfile "$dst" "$src"
    made="jpegtran -copy all"
  fi
  read -r got w2 h2 _ < <(jpeg_info "$dst") || die "$name: jpegtran wrote something file(1) does not read"
  [ "$got" = "$want" ] || die "$name: wanted $want, got $got"
  [ "$w2" = "$w" ] && [ "$h2" = "$h" ] || die "$name: size changed from ${w}x$h to ${w2}x$h2"
  djpeg -scale 1/8 -outfile /dev/null "$dst" 2>/dev/null || die "$name: djpeg cannot decode it"

  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$name" "$pkg" "${version[$pkg]}" "$path" "$licence" "$stated" "$author" "$w" "$h" "$mp" \
    "$(stat -c %s "$dst")" "$want" "$made" "$(sha256sum "$dst" | cut -d' ' -f1)" >>"$manifest"
  i=$((i + 1))
done <<<"$PHOTOS"

cat >"$stage/README" <<EOF
Photographs from Debian packages, made by datasets/photos.sh (do not edit: rerun it).
Each file's source package, licence and author are in MANIFEST.tsv; the packages' copyright
files (and the Plasma wallpapers' metadata.json) are in licences/. Redistributing these files
means following their licences: attribution to the author for CC-BY-*, the same licence for
CC-BY-SA-* and GPL/LGPL files and their derivatives.
EOF
echo "$recipe" >"$stage/.complete"

# Into place: the old directory goes only once the new one is complete.
rm -rf "$out"
mv "$stage" "$out"
chmod 755 "$out"
summary "$out"
