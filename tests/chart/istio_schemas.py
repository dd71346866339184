"""Strict schemas of the three Istio security kinds the chart and the istio-auth overlay render.

kubernetes-validate knows only built-in kinds, and Istio's CRDs are not among the reference files,
so these follow Istio's security.istio.io/v1 API reference for the fields that exist, with unknown
keys refused (a typo such as ``requestPrincipal`` would otherwise be silently ignored by Istio's
API server pruning). Values Istio constrains by enum are checked too.
"""

from __future__ import annotations

from typing import Any

from tests.support.k8s_checks import STRICT_OBJECT_META

API_VERSION = "security.istio.io/v1"
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}},
}
_MTLS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"mode": {"enum": ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]}},
}
_SOURCE_FIELDS = (
    "principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
    "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks",
)  # fmt: skip
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")
_SOURCE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": dict.fromkeys(_SOURCE_FIELDS, _STRINGS),
}
_OPERATION = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": dict.fromkeys(_OPERATION_FIELDS, _STRINGS),
}
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "from": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": False, "properties": {"source": _SOURCE}},
        },
        "to": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": False, "properties": {"operation": _OPERATION}},
        },
        "when": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key"],
                "properties": {"key": {"type": "string", "minLength": 1}, "values": _STRINGS, "notValues": _STRINGS},
            },
        },
    },
}
_JWT_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["issuer"],
    "properties": {
        "issuer": {"type": "string", "minLength": 1},
        "audiences": _STRINGS,
        "jwksUri": {"type": "string", "pattern": "^https?://"},
        "jwks": {"type": "string"},
        "fromHeaders": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "prefix": {"type": "string"}},
            },
        },
        "fromParams": _STRINGS,
        "fromCookies": _STRINGS,
        "outputPayloadToHeader": {"type": "string"},
        "forwardOriginalToken": {"type": "boolean"},
        "outputClaimToHeaders": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["header", "claim"],
                "properties": {"header": {"type": "string"}, "claim": {"type": "string"}},
            },
        },
        "timeout": {"type": "string"},
    },
}
_SPECS: dict[str, dict[str, Any]] = {
    "PeerAuthentication": {
        "selector": _SELECTOR,
        "mtls": _MTLS,
        "portLevelMtls": {"type": "object", "additionalProperties": _MTLS},
    },
    "RequestAuthentication": {
        "selector": _SELECTOR,
        "jwtRules": {"type": "array", "minItems": 1, "items": _JWT_RULE},
    },
    "AuthorizationPolicy": {
        "selector": _SELECTOR,
        "action": {"enum": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
        "rules": {"type": "array", "items": _RULE},
        "provider": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": {"type": "string"}},
        },
    },
}


def istio_schema(kind: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"const": kind},
            "metadata": STRICT_OBJECT_META,
            "spec": {"type": "object", "additionalProperties": False, "properties": _SPECS[kind]},
        },
    }


ISTIO_KINDS = {(API_VERSION, kind): istio_schema(kind) for kind in _SPECS}
