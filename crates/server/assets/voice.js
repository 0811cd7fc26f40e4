// frontdesk voice page: talks to the agent over /voice/{tenant}/{agent}/ws. Binary frames
// are 16-bit PCM at 24 kHz both ways; JSON frames carry marks, clears, captions and the end
// (see frontdesk_voice::leg).
(() => {
  "use strict";
  const main = document.querySelector("main.voice");
  const button = main && main.querySelector(".talk");
  const state = main && main.querySelector(".state");
  const lines = main && main.querySelector(".lines");
  const path = main && main.dataset.socket;
  if (!button || !path) return;
  let call = null;
  const show = (text) => { state.textContent = text; };
  const line = (speaker, text) => {
    const li = document.createElement("li");
    li.className = speaker;
    li.textContent = text;
    lines.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  };
  async function start() {
    button.disabled = true;
    show("Connecting…");
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
    } catch (e) {
      show("The microphone is not available: " + e.message);
      button.disabled = false;
      return;
    }
    const context = new AudioContext({ sampleRate: 24000 });
    await context.audioWorklet.addModule("/voice-worklet.js");
    const source = context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(context, "fd-capture");
    const player = new AudioWorkletNode(context, "fd-player");
    source.connect(capture);
    player.connect(context.destination);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + path);
    socket.binaryType = "arraybuffer";
    call = { stream, context, socket };
    capture.port.onmessage = (e) => { if (socket.readyState === WebSocket.OPEN) socket.send(e.data); };
    player.port.onmessage = (e) => {
      if (e.data.played && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "mark", name: e.data.played }));
    };
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") { player.port.postMessage({ audio: e.data }, [e.data]); return; }
      const m = JSON.parse(e.data);
      if (m.type === "ready") { show("Live — speak now"); button.disabled = false; button.textContent = "Hang up"; button.setAttribute("aria-pressed", "true"); }
      else if (m.type === "mark") player.port.postMessage({ mark: m.name });
      else if (m.type === "clear") player.port.postMessage({ clear: true });
      else if (m.type === "transcript") line(m.speaker, m.text);
      else if (m.type === "end") show(m.reason === "the call ended" ? "Call ended" : m.reason);
    };
    socket.onclose = () => stop(false);
    socket.onerror = () => show("The connection failed");
  }
  function stop(hangUp) {
    if (!call) return;
    const { stream, context, socket } = call;
    call = null;
    if (hangUp && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify({ type: "stop" })); socket.close(); }
    stream.getTracks().forEach((t) => t.stop());
    context.close();
    button.textContent = "Start call";
    button.setAttribute("aria-pressed", "false");
    button.disabled = false;
    if (state.textContent.startsWith("Live")) show("Call ended");
  }
  button.disabled = false;
  button.addEventListener("click", () => (call ? stop(true) : start()));
})();
