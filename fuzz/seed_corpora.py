#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ seed files from the recorded fixtures (idempotent)."""
import base64
import hashlib
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent
vectors = root.parent / "fixtures" / "vectors"
headers = json.loads((vectors / "x402_headers.json").read_text())["cases"]
eip3009 = json.loads((vectors / "eip3009.json").read_text())["cases"]

seeds = {name: [] for name in
         ["x402_v1_header", "x402_v2_header", "signature_parse", "payment_payload_json", "usdc_amount"]}
for case in headers:
    value = case["value"].encode()
    target = "x402_v1_header" if case["header"].startswith("X-") else "x402_v2_header"
    seeds[target].append(value)
    if case["header"] in ("X-PAYMENT", "PAYMENT-SIGNATURE"):
        payload = base64.b64decode(value)
        seeds["payment_payload_json"].append(payload)
        request = {"x402Version": case["json"]["x402Version"],
                   "paymentPayload": case["json"], "paymentRequirements": case["requirements"]}
        seeds["payment_payload_json"].append(json.dumps(request).encode())
for case in eip3009:
    for key in ("signature", "compactSignature", "highSSignature"):
        seeds["signature_parse"].append(bytes.fromhex(case[key][2:]))
        seeds["signature_parse"].append(case[key].encode())
seeds["usdc_amount"] += [b"12.34", b"0.000001", b"1.80", b"5", b"1e6", b"-1", b"0.0000001"]

for target, items in seeds.items():
    folder = root / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
print("seeded", ", ".join(f"{t} ({len(i)})" for t, i in seeds.items()))
