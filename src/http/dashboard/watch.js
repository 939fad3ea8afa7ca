// The player page: `/watch?name=<streamname>` plays the live stream,
// `/watch?name=<streamname>&session=<session id>` a session's replay. Meant to be embedded
// with an iframe (see the Code Snippets tab); needs no API key, like the playlists it plays.
import { HlsPlayer } from "./player.js";

const params = new URLSearchParams(location.search);
const name = params.get("name") || "";
const session = params.get("session");
const video = document.getElementById("video");
const message = document.getElementById("message");
const path = (value) => encodeURIComponent(value);
const url = session
  ? `/replay/${path(name)}/${path(session)}/index.m3u8`
  : `/live/${path(name)}/index.m3u8`;

const show = (text) => {
  message.textContent = text;
  message.hidden = !text;
};

let player = null;
function play() {
  show(session ? "Loading the replay…" : "Connecting…");
  player = new HlsPlayer(video, url, {
    fromStart: Boolean(session), // a replay plays from its start, even while still recording
    onError: (error) => {
      player.stop();
      if (session) return show(`The replay cannot be played: ${error}`);
      // Not live (yet), or gone: try again, so the page starts by itself when it goes live.
      show("The stream is offline. Waiting for it to start…");
      setTimeout(play, 3000);
    },
    onStatus: show,
  });
  window.reelayPlayer = player;
  player.start();
}

video.addEventListener("playing", () => show(""));
if (!name) show("No stream given: use /watch?name=<streamname>.");
else play();
