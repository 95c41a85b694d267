"""A TypeScript declaration of the package from its schema, shaped like the SDK that
``pulumi package add`` generates for Node.js (a class per component with its outputs,
an args interface with plain or ``pulumi.Input`` fields), so ``tsc --noEmit`` can
check the TypeScript example offline."""

import json
from typing import Any

_SCALARS = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}


def _type(prop: dict[str, Any], schema: dict[str, Any], plain: bool) -> str:
    if "$ref" in prop:
        text = "inputs." + prop["$ref"].rsplit(":", 1)[-1]
    elif prop["type"] == "array":
        text = _type(prop["items"], schema, plain) + "[]"
    elif prop["type"] == "object":
        text = "{[key: string]: " + _type(prop["additionalProperties"], schema, plain) + "}"
    else:
        text = _type_name(prop["type"])
    return text if plain or prop.get("plain") else f"pulumi.Input<{text}>"


def _type_name(kind: str) -> str:
    return _SCALARS[kind]


def _fields(properties: dict[str, Any], required: list[str], schema: dict[str, Any], plain: bool) -> list[str]:
    lines = []
    for name in sorted(properties):
        prop = properties[name]
        doc = json.dumps(prop.get("description", ""))[1:-1].replace("*/", "* /")
        lines.append(f"    /** {doc} */")
        optional = "" if name in required else "?"
        lines.append(f"    {name}{optional}: {_type(prop, schema, plain)};")
    return lines


def declarations(schema: dict[str, Any]) -> str:
    """``index.d.ts`` of the package."""
    out = ['import * as pulumi from "@pulumi/pulumi";', "", "export declare namespace inputs {"]
    for token in sorted(schema.get("types", {})):
        shape = schema["types"][token]
        out.append(f"    interface {token.rsplit(':', 1)[-1]} {{")
        out += ["    " + line for line in _fields(shape["properties"], shape.get("required", []), schema, False)]
        out.append("    }")
    out.append("}")
    for token in sorted(schema["resources"]):
        resource = schema["resources"][token]
        name = token.rsplit(":", 1)[-1]
        required_inputs = resource.get("requiredInputs", [])
        out += ["", f"export declare class {name} extends pulumi.ComponentResource {{",
                f"    static isInstance(obj: any): obj is {name};"]
        for output in sorted(resource.get("properties", {})):
            kind = _type(resource["properties"][output], schema, True)
            out.append(f"    readonly {output}: pulumi.Output<{kind}>;")
        args = "args" if required_inputs else "args?"
        out += [f"    constructor(name: string, {args}: {name}Args, opts?: pulumi.ComponentResourceOptions);", "}",
                f"export interface {name}Args {{"]
        out += _fields(resource["inputProperties"], required_inputs, schema, False)
        out.append("}")
    return "\n".join(out) + "\n"


def package_json() -> str:
    return json.dumps({"name": "@pulumi/mns-callback-flow", "version": "0.0.0", "types": "index.d.ts",
                       "main": "index.js"}, indent=2) + "\n"
