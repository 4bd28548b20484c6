"""castproxy/access/policy.py: rules, scope needs, hidden tools and the shared listings per policy group."""

from __future__ import annotations

from types import MappingProxyType

from castproxy.access.policy import Caller, Rule, ScopeNeed, WorkspaceAccess, scope_need

LISTING = MappingProxyType({"tools": [{"name": "read"}, {"name": "write"}, {"name": "admin"}]})


def test_a_rule_matches_any_of_its_entries_and_emails_in_any_case() -> None:
    rule = Rule(emails=frozenset({"ana@corp.example"}), domains=frozenset({"eng.example"}),
                groups=frozenset({"admins"}), subjects=frozenset({"00u1"}))
    assert rule.allows(Caller(email="ana@corp.example"))
    assert rule.allows(Caller(email="someone@eng.example"))
    assert rule.allows(Caller(groups=frozenset({"x", "admins"})))
    assert rule.allows(Caller(subject="00u1"))
    assert not rule.allows(Caller(email="someone@eng.example.evil"))  # a domain is the whole part after @
    assert not rule.allows(Caller(email="ana@corp.example.evil", groups=frozenset({"eng"})))
    assert not rule.allows(Caller())


def test_only_scopes_the_workspace_offers_are_enforced() -> None:
    assert scope_need([["write:items"]], ["read:items", "write:items"]) == ScopeNeed((frozenset({"write:items"}),))
    assert scope_need([["https://graph/Mail.Send"]], ["read:items"]) is None  # cannot be granted here: upstream's call
    assert scope_need([["write:items"], []], ["write:items"]) is None  # an anonymous alternative
    need = scope_need([["a", "b"], ["c"]], ["a", "b", "c"])
    assert need is not None and need.met_by(frozenset({"c"})) and not need.met_by(frozenset({"a"}))
    assert need.challenge(frozenset({"x"})) == ("a", "b", "x")


def test_hidden_tools_and_one_shared_listing_per_group() -> None:
    access = WorkspaceAccess(tools={"admin": Rule(groups=frozenset({"admins"}))},
                             scopes={"write": ScopeNeed((frozenset({"write"}),))})
    reader = Caller(subject="r", scopes=frozenset({"read"}))
    writer = Caller(subject="w", scopes=frozenset({"read", "write"}))
    admin = Caller(subject="a", groups=frozenset({"admins"}), scopes=frozenset({"read", "write"}))
    assert access.hidden(reader) == {"admin", "write"}
    assert access.hidden(writer) == {"admin"}
    assert access.hidden(admin) == frozenset()
    assert access.listing_for(admin, LISTING) is LISTING
    first = access.listing_for(reader, LISTING)
    assert [tool["name"] for tool in first["tools"]] == ["read"]
    other_reader = Caller(subject="r2", scopes=frozenset({"read"}))
    assert access.listing_for(other_reader, LISTING) is first  # built once per hidden set, not per request
    assert access.refusal(reader, "admin") is not None and "not available" in (access.refusal(reader, "admin") or "")
    assert "needs the scope write" in (access.refusal(reader, "write") or "")
    assert access.refusal(admin, "write") is None


def test_callers_without_a_castproxy_token_have_no_scope_need() -> None:
    access = WorkspaceAccess(scopes={"write": ScopeNeed((frozenset({"write"}),))})
    assert access.hidden(Caller(key_name="bot")) == frozenset()


def test_the_limit_key_prefers_the_person_then_the_key_then_the_client_then_the_address() -> None:
    assert Caller(subject="s", key_name="k", client_id="c").limit_key == "sub:s"
    assert Caller(key_name="k", client_id="c").limit_key == "key:k"
    assert Caller(client_id="c").limit_key == "client:c"
    assert Caller(address="127.0.0.1").limit_key == "ip:127.0.0.1"
