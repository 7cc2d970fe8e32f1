#!/usr/bin/env python3
"""Regenerates the Python reference goldens used by server tests.

Usage (CPython 3.11, pydantic 2.x; no numpy needed, it is stubbed):
    python3 gen_golden.py /path/to/api-inference-community/api_inference_community/validation.py

The validation module is huggingface/api-inference-community @ 2fd0029. The outputs are:
  pyfloat.json      repr(float) for float32 values widened to float64 and for float64 values
  utf8errors.json   str(UnicodeDecodeError) of bytes.decode("utf-8"), or null when valid
  aic_normalize.json  what routes.py answers for a POST body before the pipeline runs:
                      status 400 with the exact body, or the normalised inputs/parameters and
                      the x-compute-characters count
"""
import json
import random
import struct
import sys
import types

OUT = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def dumps(obj):
    # Starlette JSONResponse.render
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def gen_floats():
    rnd = random.Random(1)
    f32 = [0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1e-4, 1e-5, 9.999e-5, 1e16, 1e15, 1.5e16, 123456.789,
           3.4028234663852886e38, 1.401298464324817e-45, 1.1754943508222875e-38, 0.0001, 0.00011,
           65504.0, 16777216.0, 16777217.0, 1e10, 2.5e-3, 0.3333333, 7e22, 1e-30]
    for _ in range(300):
        f32.append(rnd.uniform(-1, 1))
    for _ in range(100):
        f32.append(rnd.uniform(-1, 1) * 10 ** rnd.randint(-40, 38))
    out = []
    for x in f32:
        w = struct.unpack("<f", struct.pack("<f", x))[0]
        out.append({"bits": struct.pack(">d", w).hex(), "repr": repr(w), "f32": True})
    f64 = [3.5, 1e5, 1e16, 1e17, 1e22, 1e23, 5e-324, 1.7976931348623157e308, 0.1, 0.2 + 0.1, 1e-7,
           123456789.123, float(2 ** 53), float(2 ** 53 + 2), 1e-4, 0.001, 100.0, 1234567890123456.0]
    for _ in range(200):
        f64.append(rnd.uniform(-1, 1) * 10 ** rnd.randint(-320, 308))
    for x in f64:
        out.append({"bits": struct.pack(">d", x).hex(), "repr": repr(x), "f32": False})
    return out


def gen_utf8():
    fixed = [b"\xc3\x28", b"abc\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2", b"ab\xe2\x82", b"\xe2\x82\x28",
             b"\xf0\x9f\x98", b"\xf0\x9f\x98\x28", b"\xf4\x90\x80\x80", b"\xf0\x80\x80\x80", b"\xed\xa0",
             b"\xe0\x80", b"\xe0\xa0", b"\xf5", b"\x80", b"h\xc3\xa9\xff", b"\xf0\x9f", b"\xf0\x28",
             "été".encode(), b"", b"\xc2", b"\xdf\xbf\xe0"]
    alphabet = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
                0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff]
    rnd = random.Random(2)
    cases = list(fixed)
    for _ in range(1500):
        n = rnd.randint(1, 6)
        cases.append(bytes(rnd.choice(alphabet) for _ in range(n)))
    out, seen = [], set()
    for b in cases:
        if b in seen:
            continue
        seen.add(b)
        try:
            b.decode("utf-8")
            msg = None
        except UnicodeDecodeError as e:
            msg = str(e)
        out.append({"hex": b.hex(), "msg": msg})
    return out


def load_validation(path):
    np = types.ModuleType("numpy")
    np.array = np.ndarray = np.float32 = object  # only used in annotations
    sys.modules["numpy"] = np
    src = open(path).read()
    mod = types.ModuleType("validation")
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


def chars(inputs):
    # routes.get_input_characters
    if isinstance(inputs, str):
        return len(inputs)
    if isinstance(inputs, (tuple, list)):
        return sum(chars(i) for i in inputs)
    if isinstance(inputs, dict):
        return sum(chars(i) for i in inputs.values())
    return 0


def gen_aic(v):
    from pydantic import ValidationError

    fe = [
        '{"inputs":"hello"}', '"hello"', "hello world", "Some", '{"inputs":["hugging","face"]}', '["a","b"]',
        '{"inputs":[]}', "[]", '{"inputs":12}', "12", "3.5", "1e5", "-0", "-0.0", "1E400", "-1e400", "true",
        "false", "null", "NaN", "Infinity", "-Infinity", "[NaN]", "1.0", "0.1", "123456789012345678901234567890",
        "1e-7", "1.5e16", "  7  ", '{"inputs":["hugging",[1,2,3]]}', '{"inputs":[1,2]}', '{"inputs":["a",null,"b"]}',
        '{"inputs":{"a":1}}', '{"inputs":null}', '{"foo":"bar"}', '{"inputs":"x","parameters":null}',
        '{"inputs":"x","parameters":{"a":1}}', '{"inputs":"x","options":{"wait_for_model":true}}',
        '{"inputs":', "[1,", "{'a':1}", ' "x" ', '\ufeff"x"', "é", '"\\ud83d\\ude00"', '"\\u00e9t\\u00e9"',
        '{"inputs":"a","inputs":"b"}', '"a\tb"', '"a\\tb"', "9" * 4301, "9" * 4300, "[" * 50 + "]" * 50,
        '{"Inputs":"x"}', '{"inputs":"\\u0000"}', '[true]', '{"inputs":[true,1.5]}', "0.000001", "1e16", "1e15",
        '"\\/"', "{}", '{"inputs":{}}', "\ttabbed", "", "  ", '"\\ud800"', '"a"b', "1 2", "01", "-", ".5",
        '{"inputs":"😀 é"}',
    ]
    ss = [
        '{"inputs":{"source_sentence":"a","sentences":["b","c"]}}', '{"source_sentence":"a","sentences":["b","c"]}',
        '{"inputs":{"source_sentence":"a"}}', '{"inputs":{"source_sentence":"a","sentences":"b"}}',
        '{"inputs":{"source_sentence":"a","sentences":[1]}}', '{"inputs":{"source_sentence":"a","sentences":["a",2,null]}}',
        '{"inputs":{"source_sentence":1,"sentences":["b"]}}', "{}", "raw text", "12", "[]", "null", '{"inputs":[]}',
        '{"inputs":{"source_sentence":"a","sentences":[]}}', '{"source_sentence":"a","sentences":["b"],"x":"zzz"}',
        '{"inputs":{"source_sentence":"a","sentences":["b"]},"parameters":{"foo":1}}', '{"inputs":"x"}',
        '{"inputs":["x"]}', '{"inputs":{"source_sentence":null,"sentences":null}}',
        '{"inputs":{"sentences":["b"],"source_sentence":"a"}}', '{"inputs":{"source_sentence":"a","sentences":[["x"]]}}',
        '{"inputs":["x","it\'s","a\\"b","é","\\n","\\\\",1,2.5,true,null,{"k":"v"},[]]}', '{"inputs":1e400}',
        '{"inputs":-0.0}', '{"inputs":1.5e16}', '{"inputs":{"source_sentence":"a","sentences":{"0":"b"}}}',
        '{"inputs":["it\'s \\"q\\""]}', '{"inputs":["\\t\\u0001\\u007f\\u0080"]}', "true",
        '{"inputs":{"source_sentence":"é","sentences":["😀"],"n":{"deep":["xyz"]}}}',
    ]
    out = []
    for task, bodies in (("feature-extraction", fe), ("sentence-similarity", ss)):
        for text in bodies:
            body = text.encode("utf-8")
            case = {"task": task, "body_hex": body.hex()}
            try:
                inputs, params = v.normalize_payload_nlp(body, task)
            except ValidationError as e:
                errors = []
                for error in e.errors():
                    if len(error["loc"]) > 0:
                        errors.append(f'{error["msg"]}: received `{error["loc"][0]}` in `parameters`')
                    else:
                        errors.append(f'{error["msg"]}: received `{error["input"]}` in `parameters`')
                case.update(status=400, body=dumps({"error": errors}))
            except Exception as e:
                case.update(status=400, body=dumps({"error": str(e)}))
            else:
                case.update(status=200, inputs=json.dumps(inputs, ensure_ascii=False, separators=(",", ":")),
                            parameters=json.dumps(params, ensure_ascii=False, separators=(",", ":")),
                            chars=chars(inputs))
            out.append(case)
    out.append({"task": "feature-extraction", "body_hex": b"\xc3\x28".hex(), "status": 400,
                "body": dumps({"error": str(_decode_err(b"\xc3\x28"))})})
    return out


def _decode_err(b):
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as e:
        return e


def write(name, obj):
    with open(f"{OUT}/{name}", "w") as f:
        json.dump(obj, f, indent=0)  # ASCII: some inputs hold lone surrogates
        f.write("\n")


if __name__ == "__main__":
    write("pyfloat.json", gen_floats())
    write("utf8errors.json", gen_utf8())
    if len(sys.argv) > 1:
        write("aic_normalize.json", gen_aic(load_validation(sys.argv[1])))
