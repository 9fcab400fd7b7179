"""`flask seed`: realistic demo data, fast (bulk inserts, processing done in-process).

Articles are written from topic vocabularies into news-like paragraphs, then summarised
and tagged with the same functions the `articles.process` task uses, against document
frequencies of the whole corpus, so seeded articles look exactly like processed ones
without flooding the task queue.
"""

from __future__ import annotations

import io
import random
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import click
import sqlalchemy as sa
from flask.cli import with_appcontext
from sqlalchemy.dialects.postgresql import insert

from app import text
from app.database import db
from app.database.wal import primary_lsn, replica_position
from app.models import Article, ArticleTerm, User
from app.models.article import STATUS_READY
from app.services import cache as article_cache
from app.services.accounts import hash_password

TOPICS: dict[str, dict[str, list[str]]] = {
    "climate": {
        "subjects": [
            "the coastal city council",
            "a regional water authority",
            "farmers in the river valley",
            "the national weather service",
            "a coalition of energy firms",
            "climate scientists",
        ],
        "objects": [
            "flood defences",
            "a heat-wave warning system",
            "drought-resistant crops",
            "offshore wind farms",
            "carbon capture pilots",
            "the reservoir expansion",
        ],
        "details": [
            "rainfall totals",
            "sea-level projections",
            "emission targets",
            "groundwater levels",
            "insurance claims",
            "wildfire seasons",
        ],
    },
    "technology": {
        "subjects": [
            "a semiconductor start-up",
            "the city's transit agency",
            "open-source maintainers",
            "a payments company",
            "the telecom regulator",
            "university researchers",
        ],
        "objects": [
            "a new battery chemistry",
            "fibre broadband",
            "a ticketing app",
            "data-centre cooling",
            "encryption standards",
            "autonomous delivery robots",
        ],
        "details": [
            "chip yields",
            "latency figures",
            "security audits",
            "subscriber numbers",
            "energy efficiency",
            "software licences",
        ],
    },
    "economy": {
        "subjects": [
            "the central bank",
            "small-business owners",
            "the finance ministry",
            "dock workers",
            "a retail chain",
            "housing economists",
        ],
        "objects": [
            "interest rates",
            "the port expansion",
            "a minimum-wage increase",
            "rent controls",
            "export tariffs",
            "the pension reform",
        ],
        "details": [
            "inflation data",
            "quarterly earnings",
            "unemployment claims",
            "mortgage approvals",
            "consumer confidence",
            "shipping volumes",
        ],
    },
    "health": {
        "subjects": [
            "the regional hospital trust",
            "public-health officials",
            "a vaccine manufacturer",
            "nurses' unions",
            "a team of epidemiologists",
            "the medicines agency",
        ],
        "objects": [
            "emergency-room capacity",
            "a measles vaccination drive",
            "mental-health services",
            "antibiotic resistance",
            "rural clinics",
            "the screening programme",
        ],
        "details": [
            "waiting times",
            "admission rates",
            "trial results",
            "staffing levels",
            "infection counts",
            "prescription costs",
        ],
    },
    "sport": {
        "subjects": [
            "the national football squad",
            "a veteran marathon runner",
            "the cycling federation",
            "club owners",
            "the Olympic committee",
            "a teenage tennis prodigy",
        ],
        "objects": [
            "the championship final",
            "stadium renovations",
            "anti-doping rules",
            "youth academies",
            "broadcasting rights",
            "the transfer window",
        ],
        "details": [
            "ticket sales",
            "training loads",
            "injury reports",
            "league standings",
            "sponsorship deals",
            "qualifying times",
        ],
    },
    "culture": {
        "subjects": [
            "the city museum",
            "an independent film festival",
            "the national orchestra",
            "a publishing house",
            "street artists",
            "the heritage foundation",
        ],
        "objects": [
            "a restored cathedral organ",
            "digital archives",
            "arts funding",
            "a retrospective exhibition",
            "translation prizes",
            "the reopened theatre",
        ],
        "details": [
            "visitor numbers",
            "ticket prices",
            "grant applications",
            "audience surveys",
            "restoration costs",
            "box-office returns",
        ],
    },
}

VERBS = ["announced", "unveiled", "defended", "criticised", "postponed", "approved", "questioned", "expanded"]
OPENERS = [
    "{Subject} {verb} plans for {object} on {weekday}, a move expected to reshape the debate over {detail}.",
    "After months of negotiation, {subject} {verb} {object}, citing new figures on {detail}.",
    "{Subject} {verb} {object} this week, and critics say the decision ignores {detail}.",
]
BODY = [
    "Officials said the first phase would begin within weeks, although {detail} remain uncertain.",
    "According to internal documents, {subject} had warned about {detail} for more than a year.",
    "Supporters argue that {object} will pay for itself, while opponents point to {detail}.",
    '"We cannot wait for perfect data," one spokesperson said, adding that {detail} were improving.',
    "Independent analysts expect {object} to influence {detail} well beyond the region.",
    "The announcement follows a report on {detail} that drew sharp reactions from {subject}.",
    "Several observers noted that {object} had been promised before and quietly shelved.",
    "Residents interviewed on {weekday} were divided, with many asking how {detail} would be measured.",
    "A final vote on {object} is scheduled for next month, pending a review of {detail}.",
    "Funding for {object} will come partly from private investors, {subject} confirmed.",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST_NAMES = [
    "Ada",
    "Bruno",
    "Chiara",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Imani",
    "Jonas",
    "Kaito",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
]
LAST_NAMES = [
    "Almeida",
    "Berg",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Rossi",
    "Suzuki",
]


def _fill(template: str, rng: random.Random, vocab: dict[str, list[str]]) -> str:
    subject = rng.choice(vocab["subjects"])
    return template.format(
        subject=subject,
        Subject=subject[0].upper() + subject[1:],
        verb=rng.choice(VERBS),
        object=rng.choice(vocab["objects"]),
        detail=rng.choice(vocab["details"]),
        weekday=rng.choice(WEEKDAYS),
    )


def fake_article(rng: random.Random) -> tuple[str, str]:
    topic = rng.choice(list(TOPICS))
    vocab = TOPICS[topic]
    obj = rng.choice(vocab["objects"])
    title = f"{rng.choice(vocab['subjects']).capitalize()} {rng.choice(VERBS)} {obj}"[:200]
    paragraphs = []
    for index in range(rng.randint(3, 6)):
        sentences = [_fill(rng.choice(OPENERS), rng, vocab)] if index == 0 else []
        sentences += [_fill(t, rng, vocab) for t in rng.sample(BODY, rng.randint(2, 4))]
        paragraphs.append(" ".join(sentences))
    return title, "\n\n".join(paragraphs)


def seed_users(count: int, password_hash: str, rng: random.Random) -> list[int]:
    run = secrets.token_hex(3)
    rows = []
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        rows.append(
            {
                "email": f"{first.lower()}.{last.lower()}.{run}{i}@example.com",
                "display_name": f"{first} {last}",
                "password_hash": password_hash,
            }
        )
    return list(db.session.execute(insert(User).returning(User.id), rows).scalars())


def seed_articles(author_ids: list[int], count: int, rng: random.Random, batch: int = 1000) -> int:
    now = datetime.now(UTC)
    created = 0
    while created < count:
        size = min(batch, count - created)
        drafts = [fake_article(rng) for _ in range(size)]
        rows = [
            {
                "author_id": rng.choice(author_ids),
                "title": title,
                "body": body,
                "status": STATUS_READY,
                "published_at": now - timedelta(minutes=rng.randint(1, 60 * 24 * 90)),
                "keywords": [],
            }
            for title, body in drafts
        ]
        ids = list(db.session.execute(insert(Article).returning(Article.id), rows).scalars())
        terms = [text.terms_of(f"{title}\n\n{body}") for title, body in drafts]
        copy_terms((i, t) for i, ts in zip(ids, terms, strict=True) for t in ts)
        created += size
    return created


def copy_terms(rows: Iterable[tuple[int, str]]) -> None:
    """COPY into article_terms: hundreds of thousands of rows in a second or two."""
    buffer = io.StringIO("".join(f"{article_id}\t{term}\n" for article_id, term in rows))
    dbapi_connection = db.session.connection().connection.dbapi_connection
    assert dbapi_connection is not None, "a connection checked out of the pool"
    cursor = dbapi_connection.cursor()
    cursor.copy_expert("COPY article_terms (article_id, term) FROM STDIN", buffer)


def process_unprocessed() -> None:
    """Summaries and keywords for seeded articles, against the corpus's document frequencies."""
    n_docs = db.session.execute(sa.select(sa.func.count()).select_from(Article)).scalar_one()
    df = {
        term: count
        for term, count in db.session.execute(sa.select(ArticleTerm.term, sa.func.count()).group_by(ArticleTerm.term))
    }
    rows = db.session.execute(sa.select(Article.id, Article.title, Article.body).where(Article.summary.is_(None))).all()
    updates = [
        {
            "b_id": r.id,
            "summary": text.summarize(r.body, df, n_docs),
            "keywords": text.keywords(f"{r.title}\n\n{r.body}", df, n_docs),
        }
        for r in rows
    ]
    if updates:
        db.session.connection().execute(
            sa.update(Article)
            .where(Article.id == sa.bindparam("b_id"))
            .values(summary=sa.bindparam("summary"), keywords=sa.bindparam("keywords"), updated_at=Article.updated_at),
            updates,
        )


#: Bulk seeding: rows per INSERT ... SELECT (one transaction), and how long to wait for the
#: replica to replay each before writing the next. 1M rows write more WAL than the replica
#: slot may hold back (MAX_SLOT_WAL_KEEP_SIZE): a primary that outruns its replica by that
#: much invalidates the slot, and the replica must be rebuilt.
BULK_BATCH = 50_000
BULK_REPLICA_WAIT = 120.0
#: Distinct texts the bulk rows cycle through (generated, summarised and tagged once).
BULK_TEXTS = 400

_BULK_INSERT = sa.text(
    """
    INSERT INTO articles (author_id, title, body, status, summary, keywords, views, published_at, updated_at)
    SELECT (:authors)[1 + (g * 7) % cardinality(:authors)],
           (:titles)[1 + g % cardinality(:titles)],
           (:bodies)[1 + g % cardinality(:titles)],
           'ready',
           (:summaries)[1 + g % cardinality(:titles)],
           string_to_array((:keywords)[1 + g % cardinality(:titles)], ','),
           (g * 37) % 1000,
           published,
           published
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g,
         LATERAL (SELECT now() - interval '365 days' * random() AS published) AS p
    """
)


def bulk_texts(rng: random.Random) -> dict[str, list[str]]:
    """BULK_TEXTS short articles (a paragraph each), summarised and tagged like processed ones."""
    drafts = []
    for _ in range(BULK_TEXTS):
        title, body = fake_article(rng)
        drafts.append((title, body.split("\n\n", 1)[0]))
    terms = [text.terms_of(f"{title}\n\n{body}") for title, body in drafts]
    df: dict[str, int] = {}
    for article_terms in terms:
        for term in article_terms:
            df[term] = df.get(term, 0) + 1
    return {
        "titles": [title for title, _ in drafts],
        "bodies": [body for _, body in drafts],
        "summaries": [text.summarize(body, df, len(drafts)) for _, body in drafts],
        "keywords": [",".join(text.keywords(f"{t}\n\n{b}", df, len(drafts))) for t, b in drafts],
    }


def wait_for_replica(lsn: int, timeout: float) -> bool:
    """Until the replica has replayed ``lsn`` (False after ``timeout`` s, or with no replica)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with db.engines["replica"].connect() as conn:
                position = replica_position(conn)
        except sa.exc.SQLAlchemyError:
            return False
        if not position.in_recovery or (position.replay_lsn or 0) >= lsn:
            return True
        time.sleep(0.2)
    return False


def bulk_articles(author_ids: list[int], count: int, rng: random.Random) -> int:
    """``count`` processed articles in INSERT ... SELECT batches of BULK_BATCH, each committed
    and replayed by the replica before the next (no article_terms: nothing is processed)."""
    texts = bulk_texts(rng)
    created = 0
    while created < count:
        size = min(BULK_BATCH, count - created)
        db.session.execute(
            _BULK_INSERT,
            {"authors": author_ids, "first": created + 1, "last": created + size, **texts},
        )
        db.session.commit()
        created += size
        with db.engine.connect() as conn:
            lsn = primary_lsn(conn)
        if not wait_for_replica(lsn, BULK_REPLICA_WAIT):
            click.echo(f"seed: the replica is not replaying (at {created} articles); going on without waiting")
        click.echo(f"seed: {created}/{count} articles")
    return created


@click.command("seed")
@click.option("--users", "n_users", default=5, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--articles", "n_articles", default=60, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--password", help="Password of the demo users (default: random, printed).")
@click.option("--if-empty", is_flag=True, help="Do nothing when articles already exist (for `make up`).")
@click.option("--random-seed", type=int, help="Make the generated text reproducible.")
@click.option(
    "--bulk",
    is_flag=True,
    help="Benchmark data: short articles, already processed, in large SQL batches the replica keeps up with "
    "(1,000,000 in about a minute).",
)
@with_appcontext
def seed(
    n_users: int, n_articles: int, password: str | None, if_empty: bool, random_seed: int | None, bulk: bool
) -> None:
    """Create demo users and articles with bulk inserts (10,000 articles in seconds)."""
    if if_empty and db.session.execute(sa.select(sa.exists().select_from(Article))).scalar():
        click.echo("seed: articles exist already; nothing to do")
        return
    started = time.perf_counter()
    rng = random.Random(random_seed)
    password = password or secrets.token_urlsafe(9)
    author_ids = seed_users(n_users, hash_password(password), rng)
    # Read inside the writing transaction (so on the primary), before the commit.
    first_email = db.session.execute(sa.select(User.email).where(User.id == author_ids[0])).scalar_one()
    if bulk:
        db.session.commit()
        created = bulk_articles(author_ids, n_articles, rng)
    else:
        created = seed_articles(author_ids, n_articles, rng)
        process_unprocessed()
    db.session.commit()
    article_cache.invalidate(article_cache.LATEST, article_cache.ARCHIVE)
    click.echo(
        f"seed: {n_users} users and {created} articles in {time.perf_counter() - started:.1f}s; "
        f"demo login: {first_email} / {password}"
    )
