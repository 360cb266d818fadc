# Sourced by scripts/fetch-deno.sh and scripts/fetch-typescript.sh: the one way conductor's build
# downloads a package from the npm registry without npm.
# fetch_tarball WHO PATH WANT DEST downloads ${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}/PATH
# over HTTPS into DEST and fails unless its sha512 is WANT ("sha512-<base64>", the registry's
# integrity format, pinned in the repo); WHO prefixes the messages.
fetch_tarball() {
  local who=$1 path=$2 want=$3 dest=$4
  case "$want" in
    sha512-*) ;;
    *) echo "$who: the pinned hash is not a sha512-… value: $want" >&2; return 1 ;;
  esac
  command -v curl >/dev/null || { echo "$who: curl is required (apt-get install -y curl)" >&2; return 1; }
  local registry=${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}
  local url="${registry%/}/$path"
  curl -fsSL --retry 3 --proto '=https' -o "$dest" "$url" || { echo "$who: could not download $url" >&2; return 1; }
  local got
  got="sha512-$(openssl dgst -sha512 -binary "$dest" | base64 -w0)"
  if [ "$got" != "$want" ]; then
    echo "$who: $url is not the pinned package: the repo pins $want, the file is $got" >&2
    return 1
  fi
}
