"""Base URL checks: HTTPS everywhere except loopback."""

from __future__ import annotations

import pytest

from cactus_desk.gateway.urls import InsecureURLError, InvalidURLError, check_base_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://cactusgino.com", "https://cactusgino.com"),
        ("https://cactusgino.com/", "https://cactusgino.com"),
        ("  https://CactusGino.com///  ", "https://cactusgino.com"),
        ("HTTPS://gw.example:8443/prefix/", "https://gw.example:8443/prefix"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.10.0.3", "http://127.10.0.3"),
        ("http://localhost:5000", "http://localhost:5000"),
        ("http://[::1]:5000/", "http://[::1]:5000"),
    ],
)
def test_accepted_and_normalised(given: str, expected: str) -> None:
    assert check_base_url(given) == expected


@pytest.mark.parametrize(
    "url",
    ["http://cactusgino.com", "http://10.0.0.5:8000", "http://[2001:db8::1]/", "http://128.0.0.1"],
)
def test_plain_http_to_another_host_is_insecure(url: str) -> None:
    with pytest.raises(InsecureURLError) as info:
        check_base_url(url)
    assert "https://" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "Enter the gateway address"),
        ("cactusgino.com", "needs https://"),
        ("ftp://cactusgino.com", "must start with https://"),
        ("file:///etc/passwd", "must start with https://"),
        ("https://", "no host name"),
        ("https://:443/", "no host name"),
        ("https://user:pw@cactusgino.com", "user name or password"),
        ("https://cactusgino.com/?x=1", "'?' or '#'"),
        ("https://cactusgino.com:99999", "invalid port"),
    ],
)
def test_refused_with_a_plain_message(url: str, words: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        check_base_url(url)
    assert words in str(info.value)
    assert not isinstance(info.value, InsecureURLError)
