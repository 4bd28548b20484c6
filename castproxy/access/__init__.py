"""Who is calling and what they may do: company sign-in (OIDC), access policies, operation scopes, rate limits.

`policy.py` is pure (a `Caller` and the rules of one workspace); `oidc.py` and `sessions.py` sign people in at
the company's identity provider; `limits.py` counts calls. docs/access.md is the user's side of it.
"""

__all__: list[str] = []
