"""The console in a real browser: Debian's chromium, headless, its fake microphone playing a
call, drives the page through a live call (Playwright for Python).

First on the tone model (always, where chromium is installed), then on the shipped model and
an example call (skipped, with the reason, until both exist).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from urgence.app.server import create_app

from .conftest import ServerThread
from .fakes import RATE, ToneModel, tone_call

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"chromium not installed at {CHROMIUM}"),
]


def open_console(playwright, url: str, call_wav: Path, profile: Path):
    """A fresh headless chromium whose microphone plays ``call_wav`` (in a loop)."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={call_wav}",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )


def live_call_in_browser(url: str, call_wav: Path, profile: Path, *, service: str,
                         keyword: str, screenshot: Path | None = None) -> None:
    """Start a live call on the console, wait for ``service`` and ``keyword``, hang up."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = open_console(playwright, url, call_wav, profile)
        try:
            page = context.new_page()
            page.set_viewport_size({"width": 1280, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.click("#demarrer")
            expect = sync_api.expect
            expect(page.locator("#service .numero")).to_have_text(service, timeout=30_000)
            expect(page.locator("#frise .mot", has_text=keyword).first).to_be_visible()
            expect(page.locator("#motifs")).to_contain_text(f"« {keyword} »")
            expect(page.locator("#etat")).to_contain_text("en cours")
            if screenshot is not None:
                page.wait_for_timeout(1500)
                page.screenshot(path=str(screenshot))
            page.click("#raccrocher")
            expect(page.locator("#appels tr").first).to_contain_text("terminé", timeout=15_000)
            expect(page.locator("#appels tr").first).to_contain_text("micro")
            assert errors == []
        finally:
            context.close()


def test_live_call_on_the_tone_model(tmp_path):
    call_wav = tmp_path / "call.wav"
    sf.write(call_wav, tone_call([("incendie", 0.8)], 4.0), RATE, subtype="PCM_16")
    app = create_app(ToneModel(), data_dir=tmp_path / "data")
    with ServerThread(app) as server:
        live_call_in_browser(server.url + "/", call_wav, tmp_path / "profile",
                             service="18", keyword="incendie")


def test_dropped_recording_on_the_tone_model(tmp_path):
    """A recording chosen in the drop zone is triaged and joins the history."""
    sync_api = pytest.importorskip("playwright.sync_api")
    recording = tmp_path / "appel-vol.wav"
    sf.write(recording, tone_call([("vol", 1.0)], 3.0), RATE, subtype="PCM_16")
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("pas du son")
    app = create_app(ToneModel(), data_dir=tmp_path / "data")
    with ServerThread(app) as server, sync_api.sync_playwright() as playwright:
        context = open_console(playwright, server.url, recording, tmp_path / "profile")
        try:
            page = context.new_page()
            page.goto(server.url + "/")
            page.set_input_files("#fichier", str(not_audio))
            sync_api.expect(page.locator("#erreur")).to_contain_text("pas un enregistrement")
            page.set_input_files("#fichier", str(recording))
            sync_api.expect(page.locator("#service .numero")).to_have_text("17")
            sync_api.expect(page.locator("#service .nom")).to_have_text("Police")
            sync_api.expect(page.locator("#appels tr").first).to_contain_text("fichier")
            sync_api.expect(page.locator("#erreur")).to_be_hidden()
        finally:
            context.close()


def test_live_example_call_on_the_shipped_model(tmp_path, shipped_model, expected_examples):
    """The burglary example call through chromium's fake microphone: 17 and "cambriolage"
    appear, as `urgence triage` finds them in the file."""
    from urgence.audio.io import load_audio

    from .conftest import EXAMPLES

    name = "appel-cambriolage.wav"
    assert expected_examples[name]["services"] == ["17"]
    call_wav = tmp_path / name  # 16 kHz: the examples are 8 kHz telephone audio
    sf.write(call_wav, load_audio(EXAMPLES / name), RATE, subtype="PCM_16")
    app = create_app(shipped_model, data_dir=tmp_path / "data")
    screenshot = tmp_path / "console.png"  # how docs/console.png is made
    with ServerThread(app) as server:
        live_call_in_browser(server.url + "/", call_wav, tmp_path / "profile",
                             service="17", keyword="cambriolage", screenshot=screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_enrolment_page_records_a_take(tmp_path):
    """The enrolment page records the fake microphone and the server saves a 16 kHz WAV."""
    sync_api = pytest.importorskip("playwright.sync_api")
    call_wav = tmp_path / "voice.wav"
    sf.write(call_wav, tone_call([("vol", 0.2)], 2.0), RATE, subtype="PCM_16")
    data_dir = tmp_path / "data"
    app = create_app(ToneModel(), data_dir=data_dir)
    with ServerThread(app) as server, sync_api.sync_playwright() as playwright:
        context = open_console(playwright, server.url, call_wav, tmp_path / "profile")
        try:
            page = context.new_page()
            page.goto(server.url + "/enrolement")
            page.fill("#nom", "Marie L")
            page.click("#charger")
            sync_api.expect(page.locator("#erreur")).to_contain_text("Identifiant invalide")
            page.fill("#nom", "marie-l")
            page.fill("#duree", "1")
            page.click("#charger")
            card = page.locator(".carte", has_text="électrocution")
            sync_api.expect(card).to_contain_text("0 / 5 prises")
            card.locator("button").click()
            sync_api.expect(card).to_contain_text("1 / 5 prises", timeout=15_000)
        finally:
            context.close()
    take = data_dir / "recordings" / "marie-l" / "électrocution" / "1.wav"
    info = sf.info(take)
    assert (info.samplerate, info.channels) == (RATE, 1)
    assert 0.8 <= info.duration <= 1.3
    assert abs(sf.read(take)[0]).max() > 0.05  # the microphone's audio, not silence
