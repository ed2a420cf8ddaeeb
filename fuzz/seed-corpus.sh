#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets from the repository's test data:
#   fuzz/corpus/rpc_server     client byte streams (mode byte + the C>S PDUs of each captured
#                              session), and each C>S PDU alone after the valid bind prefix
#   fuzz/corpus/kms_request    the KMS payloads of every C>S request PDU, Appendix A requests
#   fuzz/corpus/ndr            the stubs of every request and response PDU
#   fuzz/corpus/client_verify  every S>C PDU, Appendix A responses and bind acks
#   fuzz/corpus/epid_parse     every ePID found in the test data
#   fuzz/corpus/config_file    the example configuration (every option), and small files
#   fuzz/corpus/products_file  products.json, a small consistent catalog cut from it, and
#                              extension files
# Usage: fuzz/seed-corpus.sh [corpus-dir]   (default: fuzz/corpus next to this script)
# Re-running is harmless: files are named by their content's SHA-1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
testdata="$here/../testdata"
corpus="${1:-$here/corpus}"
targets=(rpc_server kms_request ndr client_verify epid_parse config_file products_file)
for t in "${targets[@]}"; do mkdir -p "$corpus/$t"; done

# put TARGET HEX: writes the bytes HEX stands for to corpus/TARGET/<sha1>.
put() {
    local target="$1" hex="$2" name
    [ -n "$hex" ] || return 0
    name="$(printf '%s' "$hex" | sha1sum | cut -c1-40)"
    printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$corpus/$target/$name"
}

# put_text TARGET TEXT
put_text() {
    local name
    name="$(printf '%s' "$2" | sha1sum | cut -c1-40)"
    printf '%s' "$2" >"$corpus/$1/$name"
}

# byte HEX OFFSET: the byte at OFFSET as a number.
byte() { echo $((16#${1:$((2 * $2)):2})); }

# Request PDU (hex) -> its stub (hex), honouring PFC_OBJECT_UUID.
request_stub() {
    local pdu="$1" start=24
    (($(byte "$pdu" 3) & 0x80)) && start=40
    printf '%s' "${pdu:$((2 * start))}"
}

# Request stub (hex) -> the KMS payload (hex): NDR64 stubs have a zero second word.
stub_payload() {
    local stub="$1"
    if [ "${stub:8:8}" = "00000000" ]; then
        printf '%s' "${stub:32}"
    else
        printf '%s' "${stub:16}"
    fi
}

add_client_pdu() {
    local pdu="$1" ptype
    put rpc_server "07$pdu" # after the valid bind prefix, NDR64 and BTFN on
    ptype=$(byte "$pdu" 2)
    if [ "$ptype" -eq 0 ] && [ ${#pdu} -gt 48 ]; then
        local stub
        stub="$(request_stub "$pdu")"
        put ndr "$stub"
        put kms_request "$(stub_payload "$stub")"
    fi
}

add_server_pdu() {
    local pdu="$1"
    put client_verify "$pdu"
    if [ "$(byte "$pdu" 2)" -eq 2 ] && [ ${#pdu} -gt 48 ]; then
        put ndr "${pdu:48}"
    fi
}

sessions=0
while IFS= read -r -d '' file; do
    stream=""
    while IFS= read -r line; do
        case "$line" in
        "C>S "*)
            pdu="${line#C>S }"
            pdu="${pdu//[[:space:]]/}"
            stream+="$pdu"
            add_client_pdu "$pdu"
            ;;
        "S>C "*)
            pdu="${line#S>C }"
            add_server_pdu "${pdu//[[:space:]]/}"
            ;;
        esac
    done <"$file"
    # The whole client side of the session: NDR64+BTFN on (06), and both off (00).
    put rpc_server "06$stream"
    put rpc_server "00$stream"
    sessions=$((sessions + 1))
done < <(find "$testdata/vectors" -name '*.hex' -print0 | sort -z)

a() { tr -d '[:space:]' <"$testdata/appendix-a/$1.hex"; }
put rpc_server "06$(a a5-bind)$(a a5-alter-context)$(a a5-request-ndr32)$(a a5-request-ndr64)"
for f in a5-bind a5-alter-context a5-request-ndr32 a5-request-ndr64; do add_client_pdu "$(a $f)"; done
for f in a1-base-request-v6 a2-v4-request a3-v5-request a4-v6-request; do put kms_request "$(a $f)"; done
for f in a2-v4-response a3-v5-response a4-v6-response a3-v5-response-plain a4-v6-response-plain \
    a5-bind-ack-ndr64 a5-bind-ack-no-ndr64 a5-alter-context-resp a5-response-ndr32 \
    a5-response-ndr64 a5-error-ndr32 a5-error-ndr64 a5-fault-unk-if; do
    add_server_pdu "$(a $f)"
done

while IFS= read -r epid; do
    put_text epid_parse "$epid"
done < <(grep -rhoE '[0-9]{5}-[0-9]{5}-[0-9]{3}-[0-9]{6}-[0-9]{2}-[0-9]+-[0-9]+\.0000-[0-9]{7}' "$testdata" | sort -u)
put_text epid_parse "06401-00206-566-174993-03-1033-9600.0000-2802018"
put_text epid_parse "05426-00206-586-025264-03-1033-9200.0000-3662020"

# Configuration files: the example `rkms config example` prints (kept in the repository as
# contrib/rkms.toml), as it is and with every setting uncommented.
cp "$here/../contrib/rkms.toml" "$corpus/config_file/example.toml"
sed 's/^#\([a-z0-9-]* = \)/\1/' "$here/../contrib/rkms.toml" >"$corpus/config_file/example-set.toml"
put_text config_file $'# comment\nclient-count = 50\nlisten = ["127.0.0.1:1688", "[::1]:1688"]\n\ncheck_client_time = true\n'
put_text config_file $'epid = "06401-00206-566-174993-03-1033-9600.0000-2802018"\nrenewal-interval = "7d"\nlog-level = \'debug\'\n'
put_text config_file $'[serve]\nport = 1688\nx = 1.5e3\n'

# Products files: the whole catalog, a small consistent one, and extensions.
products="$here/../crates/rkms-catalog/data/products.json"
cp "$products" "$corpus/products_file/products.json"
python3 - "$products" "$corpus/products_file" <<'PY'
import json, sys
full = json.load(open(sys.argv[1]))
sku = full["sku_items"][0]
kms = next(k for k in full["kms_items"] if k["id"] == sku["kms_id"])
app = next(a for a in full["applications"] if a["id"] == sku["app_id"])
small = {
    "applications": [app],
    "epid_profiles": full["epid_profiles"],
    "csvlks": full["csvlks"][:4],
    "kms_items": [kms],
    "sku_items": [sku],
    "host_builds": full["host_builds"],
    "lcids": full["lcids"][:3],
}
out = sys.argv[2]
json.dump(small, open(f"{out}/small.json", "w"), indent=1)
json.dump({"sku_items": [dict(sku, id="00000000-0000-0000-0000-000000000001",
                              display_name="Extra")]}, open(f"{out}/extension-sku.json", "w"))
json.dump({"lcids": [1033, 1031]}, open(f"{out}/extension-lcids.json", "w"))
PY

echo "seeded from $sessions sessions and Appendix A:"
for t in "${targets[@]}"; do
    printf '  %-14s %4d files\n' "$t" "$(find "$corpus/$t" -type f | wc -l)"
done
