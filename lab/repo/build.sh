#!/usr/bin/env bash
# Build the lab's provider package repository: the packages of lab/repo/packages.txt from Debian's
# newer suite, with every dependency a server of the base lab image lacks, plus the previous
# versions of what the update replaces (for a rollback), as a signed APT repository (suite
# `provider`, components `main` and `previous`). The lab servers have no route to any mirror:
# this repository, served from the host (lab/repo/serve.sh), is their only source.
#
# The result is $HOSTING_LAB_STATE/repo/provider (a symlink to the build), with a stamp of the
# hash of the recipe, this script and the base image's recipe label: an unchanged recipe is not
# rebuilt (--force rebuilds). A build happens in a temporary directory and is published by an
# atomic rename, so an interrupted build never looks complete. Downloaded packages and the
# signing key are kept under $HOSTING_LAB_STATE/cache.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${HOSTING_LAB_STATE:-/var/lib/hosting-lab}
recipe_file=$here/packages.txt
python=${LAB_PYTHON:-python3}
force=no
[ "${1:-}" = --force ] && force=yes

say() { echo "provider repo: $*"; }
fail() { echo "provider repo: $*" >&2; exit 1; }

# --- the recipe --------------------------------------------------------------------------------
field() { awk -v key="$1" '$1 == key { print $2; exit }' "$recipe_file"; }
suite=$(field suite)
previous=$(field previous)
base=$(field base)
[ -n "$suite" ] && [ -n "$previous" ] && [ -n "$base" ] || fail "$recipe_file needs suite, previous and base lines."
mapfile -t services < <(awk '$1 == "service" { $1 = ""; sub(/^ /, ""); print }' "$recipe_file")
[ "${#services[@]}" -gt 0 ] || fail "$recipe_file names no service."
all_packages=$(for line in "${services[@]}"; do echo "${line#* }"; done | tr '\n' ' ')

image=localhost/hosting-lab:$base
image_recipe=$(podman image inspect --format '{{ index .Labels "hosting.lab.recipe" }}' "$image" 2>/dev/null) \
  || fail "the lab image $image does not exist; build it first (lab/images/build.sh $base)."
stamp=$( (cat "$recipe_file" "$here/build.sh"; echo "$image_recipe") | sha256sum | cut -c1-16)

root=$state/repo
published=$root/provider
if [ "$force" = no ] && [ "$(cat "$published/stamp" 2>/dev/null)" = "$stamp" ]; then
  say "up to date ($published, recipe $stamp)"
  exit 0
fi

mirror=${LAB_DEBIAN_MIRROR:-$("$python" "$here/../images/recipe.py" --mirror)}
cache_new=$state/cache/repo-$suite
cache_old=$state/cache/repo-$previous
keydir=$state/cache/repo-key
mkdir -p "$root" "$cache_new" "$cache_old"
exec 9> "$root/.build.lock"
flock -n 9 || fail "another build is running (lock $root/.build.lock)."
# Left by a build that was killed outright (SIGKILL, power loss): never published, safe to drop.
rm -rf "$root"/.build.*/
work=$(mktemp -d "$root/.build.XXXXXX")
cleanup() {
  gpgconf --homedir "$keydir" --kill gpg-agent 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "building (recipe $stamp) in $work"

# --- a private apt: the base image's installed packages, one suite as the only source ---------
say "reading the installed packages of $image"
podman run --rm --network none --pull=never "$image" cat /var/lib/dpkg/status > "$work/status" \
  || fail "cannot read /var/lib/dpkg/status from $image."
arch=$(podman run --rm --network none --pull=never "$image" dpkg --print-architecture)

# apt_config NAME SOURCE-LINE: a configuration under $work/NAME that reads nothing of the host's.
apt_config() {
  local dir=$work/$1
  mkdir -p "$dir"/{lists/partial,cache/archives/partial,parts,prefs,trusted}
  echo "$2" > "$dir/sources.list"
  cat > "$dir/apt.conf" <<EOF
Dir::State "$dir";
Dir::State::lists "$dir/lists";
Dir::State::status "$work/status";
Dir::State::extended_states "$dir/extended_states";
Dir::Cache "$dir/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/parts";
Dir::Etc::Parts "$dir/parts";
Dir::Etc::Preferences "$dir/preferences";
Dir::Etc::PreferencesParts "$dir/prefs";
Dir::Etc::Trusted "$dir/trusted.gpg";
Dir::Etc::TrustedParts "$dir/trusted";
Dir::Log "$dir";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Acquire::Languages "none";
Debug::NoLocking "true";
EOF
}
apt_in() { local name=$1; shift; APT_CONFIG=$work/$name/apt.conf apt-get -q "$@"; }

debian_keyring=/usr/share/keyrings/debian-archive-keyring.gpg
apt_config new "deb [signed-by=$debian_keyring] $mirror $suite main"
apt_config old "deb [signed-by=$debian_keyring] $mirror $previous main"
say "fetching the package indexes of $suite and $previous from $mirror"
apt_in new update > "$work/new/update.log" 2>&1 || { tail -5 "$work/new/update.log"; fail "apt-get update of $suite failed."; }
apt_in old update > "$work/old/update.log" 2>&1 || { tail -5 "$work/old/update.log"; fail "apt-get update of $previous failed."; }

# --- the closure --------------------------------------------------------------------------------
# Each service alone and all together: apt may resolve a smaller set differently.
: > "$work/uris"
: > "$work/simulation"
for packages in "${services[@]#* }" "$all_packages"; do
  say "resolving: $packages"
  # shellcheck disable=SC2086
  apt_in new install -s -y $packages >> "$work/simulation" 2> "$work/resolve.err" \
    || { cat "$work/resolve.err"; fail "the packages $packages cannot be installed on $image from $suite."; }
  # shellcheck disable=SC2086
  apt_in new install --print-uris -y -qq $packages >> "$work/uris" 2>> "$work/resolve.err" \
    || { cat "$work/resolve.err"; fail "apt-get --print-uris failed for $packages."; }
done
# 'URI' FILE SIZE HASH, one per package (FILE as apt names it in its cache, epoch as %3a); the same
# package appears once per resolution.
sort -u "$work/uris" | awk -F"[' ]+" '/^'"'"'/ { print $2, $3 }' | sort -u -k2,2 > "$work/new.list"
count_new=$(wc -l < "$work/new.list")
[ "$count_new" -gt 0 ] || fail "nothing to download: the closure is empty (are the packages already installed in $image?)."

# What the update replaces or removes, at its installed version: "Inst PKG [OLD] (NEW ...)" and
# "Remv PKG [OLD]".
sed -n -e 's/^Inst \([^ ]*\) \[\([^]]*\)\].*/\1=\2/p' -e 's/^Remv \([^ ]*\) \[\([^]]*\)\].*/\1=\2/p' \
  "$work/simulation" | sort -u > "$work/old.wanted"
say "closure: $count_new packages from $suite; $(wc -l < "$work/old.wanted") installed packages replaced or removed"

# --- downloads ----------------------------------------------------------------------------------
# Packages the image builder already downloaded (its apt cache) are linked, not fetched again.
seed() {  # LIST FROM TO
  local url file
  [ -d "$2" ] || return 0
  while read -r url file; do
    [ -e "$3/$file" ] || [ ! -e "$2/$file" ] || ln "$2/$file" "$3/$file" 2>/dev/null || cp "$2/$file" "$3/$file"
  done < "$1"
}
seed "$work/new.list" "$state/cache/$suite" "$cache_new"
missing=$(while read -r url file; do [ -s "$cache_new/$file" ] || echo "$file"; done < "$work/new.list" | wc -l)
if [ "$missing" -gt 0 ]; then
  say "downloading $missing packages from $suite into $cache_new"
  # apt checks each file's size and hash against the signed index: a cached file that does not
  # match is fetched again.
  for packages in "${services[@]#* }" "$all_packages"; do
    # shellcheck disable=SC2086
    APT_CONFIG=$work/new/apt.conf apt-get -q -o Dir::Cache::archives="$cache_new" install --download-only -y \
      $packages >> "$work/download.log" 2>&1 || { tail -10 "$work/download.log"; fail "downloading from $suite failed."; }
  done
fi
while read -r url file; do
  [ -s "$cache_new/$file" ] || fail "$file was not downloaded."
done < "$work/new.list"

: > "$work/old.list"
while IFS== read -r name version; do
  apt_in old download --print-uris "$name=$version" 2>> "$work/old.err" | awk -F"[' ]+" '{ print $2, $3 }' >> "$work/old.list"
done < "$work/old.wanted"
if grep -q . "$work/old.err"; then
  cat "$work/old.err" >&2
  fail "some installed versions of $image are not on $mirror ($previous): a rollback could not reinstall them."
fi
seed "$work/old.list" "$state/cache/$previous" "$cache_old"
missing=$(while read -r url file; do [ -s "$cache_old/$file" ] || echo "$file"; done < "$work/old.list" | wc -l)
say "previous versions: $(wc -l < "$work/old.list") packages, $missing to download from $previous into $cache_old"
if [ "$missing" -gt 0 ]; then
  (cd "$cache_old" && while IFS== read -r name version; do
    apt_in old download "$name=$version" > /dev/null 2>> "$work/old.err"
  done < "$work/old.wanted") || { cat "$work/old.err"; fail "downloading the previous versions from $previous failed."; }
fi

# --- the repository -------------------------------------------------------------------------------
repo=$work/repo
mkdir -p "$repo/pool/main" "$repo/pool/previous"
link_pool() {  # LIST CACHE COMPONENT
  local url file
  while read -r url file; do
    [ -s "$2/$file" ] || fail "$file is missing from $2 after the download."
    ln "$2/$file" "$repo/pool/$3/$file" 2>/dev/null || cp "$2/$file" "$repo/pool/$3/$file"
  done < "$1"
}
link_pool "$work/new.list" "$cache_new" main
link_pool "$work/old.list" "$cache_old" previous

say "writing the indexes"
for component in main previous; do
  dir=$repo/dists/provider/$component/binary-$arch
  mkdir -p "$dir"
  (cd "$repo" && apt-ftparchive packages "pool/$component") > "$dir/Packages"
  gzip -9nk "$dir/Packages"
done
(cd "$repo" && apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=hosting-lab -o APT::FTPArchive::Release::Label=hosting-lab-provider \
  -o APT::FTPArchive::Release::Suite=provider -o APT::FTPArchive::Release::Codename=provider \
  -o APT::FTPArchive::Release::Architectures="$arch" -o APT::FTPArchive::Release::Components="main previous" \
  -o APT::FTPArchive::Release::Description="hosting lab provider repository: $suite packages for $image" \
  release dists/provider) > "$work/Release"
mv "$work/Release" "$repo/dists/provider/Release"

# --- signing ---------------------------------------------------------------------------------------
# One key for the lab, made once, without a passphrase: it signs a test repository only.
if [ ! -s "$keydir/fingerprint" ]; then
  say "making the lab's signing key in $keydir"
  rm -rf "$keydir" && mkdir -m 700 -p "$keydir"
  gpg --homedir "$keydir" --batch --quiet --passphrase '' \
    --quick-gen-key 'hosting lab provider repository <repo@lab.invalid>' ed25519 sign never 2> "$work/gpg.log" \
    || { cat "$work/gpg.log"; fail "gpg could not make the signing key."; }
  gpg --homedir "$keydir" --batch --with-colons --list-secret-keys 2>> "$work/gpg.log" | awk -F: '$1 == "fpr" { print $10; exit }' \
    > "$keydir/fingerprint"
fi
key=$(cat "$keydir/fingerprint")
say "signing with $key"
{ gpg --homedir "$keydir" --batch --yes --quiet --local-user "$key" --clearsign \
    -o "$repo/dists/provider/InRelease" "$repo/dists/provider/Release" \
  && gpg --homedir "$keydir" --batch --yes --quiet --local-user "$key" --armor --detach-sign \
    -o "$repo/dists/provider/Release.gpg" "$repo/dists/provider/Release"; } 2> "$work/gpg.log" \
  || { cat "$work/gpg.log"; fail "signing the Release file failed."; }
# The servers install this file as /etc/apt/keyrings/hosting-lab-provider.gpg (signed-by).
gpg --homedir "$keydir" --batch --export "$key" > "$repo/hosting-lab-provider.gpg"

# --- check: the repository alone, signature checked, installs every service on the base image ----
say "checking that the repository alone resolves every service on $image"
apt_config check "deb [signed-by=$repo/hosting-lab-provider.gpg] file:$repo provider main previous"
apt_in check update > "$work/check/update.log" 2>&1 || { cat "$work/check/update.log"; fail "the new repository does not verify."; }
for packages in "${services[@]#* }" "$all_packages"; do
  # shellcheck disable=SC2086
  apt_in check install -s -y $packages > "$work/check/simulation.log" 2>&1 \
    || { tail -20 "$work/check/simulation.log"; fail "the repository is not complete: $packages does not install from it alone."; }
done

# A summary for people: what is in it and how big.
{
  echo "hosting lab provider repository, recipe $stamp, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "from $mirror: $suite (component main), $previous (component previous); for $image ($image_recipe)"
  for component in main previous; do
    echo
    echo "== $component: $(ls "$repo/pool/$component" | wc -l) packages, $(du -sh "$repo/pool/$component" | cut -f1)"
    (cd "$repo" && apt-ftparchive packages "pool/$component" 2>/dev/null) | awk '
      /^Package:/ { p = $2 } /^Version:/ { v = $2 } /^$/ { print p, v }' | sort
  done
} > "$repo/CONTENTS"
echo "$stamp" > "$repo/stamp"

# --- publish -----------------------------------------------------------------------------------
target=$root/provider-$stamp
rm -rf "$target"
mv "$repo" "$target"
ln -sfn "provider-$stamp" "$root/provider.new"
mv -T "$root/provider.new" "$published"
for old in "$root"/provider-*; do
  [ "$old" = "$target" ] || rm -rf "$old"
done
say "built $published: $(ls "$target/pool/main" | wc -l) packages in main, $(ls "$target/pool/previous" | wc -l) in previous, $(du -shL "$published" | cut -f1) in all"
