"""entry version for lost-update checks; category names unique ignoring case

`entry.version` is a counter every change bumps (the API's ETag, the edit form's hidden
field). Category names were unique only as typed; names that differ only by case are now one
name at the database too, so a race past the service's check cannot make look-alikes.
Look-alikes made before (imports could) are merged first: their entries move to the oldest.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The oldest category of the same user whose name is the same ignoring case.
KEEPER = (
    "SELECT MIN(k.id) FROM category k JOIN category c ON k.user_id = c.user_id "
    "AND lower(k.name) = lower(c.name) WHERE c.id = {id}"
)
LOOK_ALIKE = (
    "EXISTS (SELECT 1 FROM category k WHERE k.user_id = {row}.user_id "
    "AND lower(k.name) = lower({row}.name) AND k.id < {row}.id)"
)


def upgrade() -> None:
    with op.batch_alter_table("entry") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.execute(
        f"UPDATE entry SET category_id = ({KEEPER.format(id='entry.category_id')}) "
        f"WHERE category_id IN (SELECT c.id FROM category c WHERE {LOOK_ALIKE.format(row='c')})"
    )
    op.execute(f"DELETE FROM category WHERE {LOOK_ALIKE.format(row='category')}")
    op.create_index(
        "uq_category_user_lower_name",
        "category",
        ["user_id", sa.text("lower(name)")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_category_user_lower_name", table_name="category")
    # Natively, not in a batch: a batch copies the table, which would drop its triggers.
    op.execute("ALTER TABLE entry DROP COLUMN version")
