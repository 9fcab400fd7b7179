"""an exact article count, kept by triggers in the transaction of every insert and delete

Expand only (a new table and triggers): code that does not read the count keeps running.
The triggers are statement-level with transition tables, so a bulk INSERT of 50,000 rows
updates the counter once, not 50,000 times. Concurrent writers serialise on the one counter
row until they commit; at a news site's write rate that costs nothing measurable.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""
        CREATE TABLE article_totals (
            id smallint DEFAULT 1 CONSTRAINT pk_article_totals PRIMARY KEY CONSTRAINT ck_article_totals_one_row CHECK (id = 1),
            articles bigint NOT NULL CONSTRAINT ck_article_totals_non_negative CHECK (articles >= 0)
        )
    """)
    op.execute("""
        CREATE FUNCTION article_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE article_totals SET articles = articles + (SELECT count(*) FROM changed_rows) WHERE id = 1;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE article_totals SET articles = articles - (SELECT count(*) FROM changed_rows) WHERE id = 1;
            ELSE  -- TRUNCATE
                UPDATE article_totals SET articles = 0 WHERE id = 1;
            END IF;
            RETURN NULL;
        END
        $$
    """)
    # Creating a trigger locks articles against writes until this transaction commits, so
    # the count below is exact: no insert can slip between it and the triggers.
    op.execute("""
        CREATE TRIGGER articles_totals_insert AFTER INSERT ON articles
        REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION article_totals_apply()
    """)
    op.execute("""
        CREATE TRIGGER articles_totals_delete AFTER DELETE ON articles
        REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION article_totals_apply()
    """)
    op.execute("""
        CREATE TRIGGER articles_totals_truncate AFTER TRUNCATE ON articles
        FOR EACH STATEMENT EXECUTE FUNCTION article_totals_apply()
    """)
    op.execute("INSERT INTO article_totals (id, articles) SELECT 1, count(*) FROM articles")


def downgrade():
    op.execute("DROP TRIGGER articles_totals_truncate ON articles")
    op.execute("DROP TRIGGER articles_totals_delete ON articles")
    op.execute("DROP TRIGGER articles_totals_insert ON articles")
    op.execute("DROP FUNCTION article_totals_apply()")
    op.execute("DROP TABLE article_totals")
