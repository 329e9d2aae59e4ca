"""Argon2id password hashing, off the event loop.

A hash carries the parameters it was made with, so raising ``ARGON2_TIME_COST`` or
``ARGON2_MEMORY_KIB`` leaves old hashes verifiable; ``needs_rehash`` tells a login that the
stored hash was made with other parameters, and the login stores a new one while it still
holds the plain password (the only moment it does).
"""

from __future__ import annotations

import asyncio

import argon2


class PasswordHasher:
    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> None:
        self._h = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=argon2.Type.ID
        )
        # verifying against this keeps "unknown user" as slow as "wrong password"
        self._dummy = self._h.hash("not-a-real-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._h.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._h.verify(password_hash or self._dummy, password) and password_hash is not None
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether ``password_hash`` was made with other parameters (or another Argon2 variant)
        than this hasher's: parsing only, no hashing."""
        try:
            return self._h.check_needs_rehash(password_hash)
        except argon2.exceptions.InvalidHashError:
            return True
