"""The forms a store password takes in text, masked, and the store's name, which never
holds one; with a real PostgreSQL server in tests/test_history_secrets.py."""

from __future__ import annotations

import pytest

from bench.history.store_error import StoreError
from bench.history.location import locate
from bench.secrets import hide, hide_all, hide_each, hide_words


@pytest.mark.parametrize("text, masked", [
    ("--history postgresql://u:pw-1@h:5/db", "--history postgresql://u:***@h:5/db"),
    ("--history=POSTGRES://u:p%40ss@h/db", "--history=POSTGRES://u:***@h/db"),
    ("postgresql://u:p@ss/x@h/db x", "postgresql://u:***@h/db x"),  # to the word's last @
    ("postgresql://u@h/db?sslmode=require&password=pw-1&port=5",
     "postgresql://u@h/db?sslmode=require&password=***&port=5"),
    ("postgresql://u@h/db?sslpassword=key-pw", "postgresql://u@h/db?sslpassword=***"),
    # a key libpq percent-decodes to password or sslpassword, in any case
    ("postgresql://u@h/db?pass%77ord=S3cret&port=5", "postgresql://u@h/db?pass%77ord=***&port=5"),
    ("postgresql://u@h/db?%70ASSWORD=S3cret", "postgresql://u@h/db?%70ASSWORD=***"),
    ("postgresql://u@h/db?%73sl%50assword=k", "postgresql://u@h/db?%73sl%50assword=***"),
    ("host=h password='a b c' dbname=x", "host=h password=*** dbname=x"),
    ("postgresql://h:5432/db", "postgresql://h:5432/db"),  # nothing to mask
    ('libpq: missing "=" after "POSTGRESQL://u:pw-1@127.0.0.1/db"',
     'libpq: missing "=" after "POSTGRESQL://u:***@127.0.0.1/db"'),
    # libpq takes all before the first @ (or /) as userinfo: a user named with a ? or a #
    ("postgresql://qa?b:pw-1@127.0.0.1:5/db", "postgresql://qa?b:***@127.0.0.1:5/db"),
    ("error: postgresql:/ha#b:pw-2@h/db is a URL", "error: postgresql:/ha#b:***@h/db is a URL"),
    ("postgresql://h?application_name=a:pw-3@x/db", "postgresql://h?application_name=a:***@x/db"),
])
def test_every_form_of_password_in_text_is_masked(text, masked):
    assert hide(text) == masked


def test_a_known_password_is_masked_wherever_a_library_quotes_it():
    assert hide("invalid port number: \"s3cret\"", ["s3cret"]) == "invalid port number: \"***\""
    assert hide("port: \"abc\"", ["abc"]) == "port: \"abc\""  # too short to hunt for


def test_a_command_line_is_masked_word_by_word():
    """A quoted URL is one word, and its password may hold spaces."""
    words = ["bench", "run", "--history", "postgresql://u:pa ss@h/db", "--store",
             "postgresql://u@h/db?password=a b&sslmode=x", "--out-dir", "my run"]
    assert hide_words(words) == ("bench run --history postgresql://u:***@h/db --store "
                                 "postgresql://u@h/db?password=***&sslmode=x --out-dir my run")
    # a password a URL repeats where no form marks it, as written or percent-decoded, and
    # in any word of the line
    words = ["bench", "--history", "postgresql://w:Zq7pw%23Hunter2@h/db?application_name="
             "Zq7pw%23Hunter2", "--tag", "Zq7pw#Hunter2", "--history", "postgresql://qa?b:pw-1@h/db"]
    assert hide_words(words) == ("bench --history postgresql://w:***@h/db?application_name=*** "
                                 "--tag *** --history postgresql://qa?b:***@h/db")
    assert hide_each(["--history", "postgresql://u@h/db?password=abcd1234", "abcd1234", "abc"]) \
        == ["--history", "postgresql://u@h/db?password=***", "***", "abc"]
    assert hide_all({"a": ["postgresql://u:pw-1@h/db", 3], "b": None}) == \
        {"a": ["postgresql://u:***@h/db", 3], "b": None}


@pytest.mark.parametrize("url, name, secrets", [
    ("postgresql://u:p%40ss@h:5/db", "postgresql://u@h:5/db", ("p%40ss", "p@ss")),
    # every setting libpq knows is kept (a resume connects with the name), the password not
    ("POSTGRES://u@h/db?password=pw&service=s&sslmode=x", "postgresql://u@h/db?service=s&sslmode=x",
     ("pw",)),
    ("postgresql://u@h/db?Pass%77ord=pw&hos%74=x", "postgresql://u@h/db?hos%74=x", ("pw",)),
    ("postgresql://?service=bench", "postgresql://?service=bench", ()),
    ("postgresql:///db?host=/run/pg", "postgresql:///db?host=/run/pg", ()),
    ("duckdb:///tmp/h.duckdb", "/tmp/h.duckdb", ()),
    ("results/history.duckdb", "results/history.duckdb", ()),
])
def test_a_store_is_named_without_its_password(url, name, secrets):
    location = locate(url)
    assert (location.name, location.secrets) == (name, secrets)
    assert location.target.startswith("postgresql://") == url.lower().startswith("postgres")


@pytest.mark.parametrize("url, said", [
    ("mysql://u:pw@h/db", "unknown scheme mysql:"),
    ("md:history", "unknown scheme md:"),
    ("duckdb://s3://bucket/h", "a duckdb:// store is a file path, not s3:"),
    ("postgresql://u:p@ss@h/db", "percent-encode an @ or /"),
    ("postgresql://u:pa/ss@h/db", "percent-encode an @ or /"),
    # libpq reads an @ in the query; it is refused for the masking, saying where it is
    ("postgresql://u@h:5/db?password=pw@x/y", "has an @ in its query: percent-encode it "
     "there (%40)"),
    ("postgresql://u@h:5/db?sslmode=require&password=pw@", "has an @ in its query"),
    ("postgresql:/u:pw@h/db", "URL starts postgresql://"),
    ("postgresql//u:pw@h/db", "URL starts postgresql://"),
    ("host=h password=pw", "a keyword=value connection string is not a store URL"),
    (" ", "the history store is empty"),
])
def test_what_names_no_store_is_refused_without_echoing_it(url, said):
    with pytest.raises(StoreError) as refused:
        locate(url)
    assert said in str(refused.value) and "pw" not in str(refused.value).replace(said, "")
