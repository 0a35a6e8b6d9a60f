"""QR codes: printable codes that lead to a business's feedback page, and their scans.

A code is a short random string; the printed image encodes `<public base URL>/q/<code>`.
Images are made with segno (PNG and SVG, no imaging library needed), at error correction
level M so a scuffed truck sticker still reads.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError
from blippsync.techs import require_active_tech

CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: readable when typed
CODE_LENGTH = 8
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{3,64}$")  # ours, and codes the web app made
PNG_SCALE = 10  # pixels per module: about 3 cm at 300 dpi for a 33-module code

_INSERT = sa.text("""
    INSERT INTO public.qr_codes (business_id, code, tech_id, label)
    VALUES (:business_id, :code, :tech_id, :label)
    ON CONFLICT (code) DO NOTHING
    RETURNING id
""")
_LIST = sa.text("""
    SELECT q.id, q.code, q.label, q.active, q.scan_count, q.created_at, t.name AS tech,
           (SELECT max(s.scanned_at) FROM public.qr_scans s WHERE s.qr_code_id = q.id)
               AS last_scan_at,
           (SELECT count(*) FROM public.qr_scans s WHERE s.qr_code_id = q.id
              AND s.scanned_at > now() - interval '30 days') AS scans_30_days
    FROM public.qr_codes q LEFT JOIN public.techs t ON t.id = q.tech_id
    WHERE q.business_id = :business_id
    ORDER BY q.created_at, q.code
""")
_DEACTIVATE = sa.text("""
    UPDATE public.qr_codes SET active = false WHERE code = :code AND business_id = :business_id
    RETURNING id
""")


@dataclass(frozen=True)
class CreatedCode:
    id: uuid.UUID
    code: str
    url: str
    png: Path
    svg: Path


def qr_url(base_url: str, code: str) -> str:
    if not base_url.lower().startswith(("https://", "http://")):
        raise InputError("http.public_base_url must be set to the address customers reach "
                         "blippsync at (https://...) before codes can be printed")
    return f"{base_url.rstrip('/')}/q/{code}"


def create_code(db: Database, business_id: uuid.UUID, label: str, base_url: str, out_dir: Path,
                tech_id: uuid.UUID | None = None) -> CreatedCode:
    """Store a new code and write its PNG and SVG into `out_dir`."""
    if not label.strip():
        raise InputError("--label: name the code (where it is stuck, or whose it is)")
    qr_url(base_url, "x")  # the base URL is checked before anything is stored
    with db.begin() as conn:
        from blippsync.businesses import get_business

        get_business(conn, business_id)
        if tech_id is not None:
            require_active_tech(conn, business_id, tech_id)
        while True:  # a clash among 31^8 codes is rare; try another
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            row = conn.execute(_INSERT, {"business_id": business_id, "code": code,
                                         "tech_id": tech_id, "label": label.strip()}).first()
            if row is not None:
                break
        url = qr_url(base_url, code)
        png, svg = write_images(url, out_dir, f"{_slug(label)}-{code}")
    return CreatedCode(id=row.id, code=code, url=url, png=png, svg=svg)


def write_images(url: str, out_dir: Path, stem: str) -> tuple[Path, Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        qr = segno.make(url, error="m", micro=False)
        png, svg = out_dir / f"{stem}.png", out_dir / f"{stem}.svg"
        qr.save(str(png), scale=PNG_SCALE, border=4)
        qr.save(str(svg), scale=4, border=4, title=url)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write the images: {exc.strerror}") from None
    return png, svg


def list_codes(db: Database, business_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.connect() as conn:
        from blippsync.businesses import get_business

        get_business(conn, business_id)
        return [dict(r) for r in conn.execute(_LIST, {"business_id": business_id}).mappings()]


def deactivate_code(db: Database, business_id: uuid.UUID, code: str) -> None:
    with db.begin() as conn:
        if conn.execute(_DEACTIVATE, {"code": code, "business_id": business_id}).first() is None:
            raise NotFoundError(f"business {business_id} has no QR code {code!r}")


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "qr"
