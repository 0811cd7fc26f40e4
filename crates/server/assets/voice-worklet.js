// frontdesk voice: two audio worklets. "fd-capture" sends the microphone as 16-bit PCM
// frames of 20 ms at the context's rate (24 kHz); "fd-player" plays queued PCM, reports
// marks once the audio before them has played, and drops everything on "clear" (barge-in).
class Capture extends AudioWorkletProcessor {
  constructor() { super(); this.frame = new Int16Array(480); this.at = 0; }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        const s = Math.max(-1, Math.min(1, input[i]));
        this.frame[this.at++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.at === this.frame.length) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(480);
          this.at = 0;
        }
      }
    }
    return true;
  }
}
class Player extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {samples: Float32Array, at} or {mark}
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.clear) { this.queue = []; return; }
      if (m.mark) { this.queue.push({ mark: m.mark }); return; }
      const pcm = new Int16Array(m.audio);
      const samples = new Float32Array(pcm.length);
      for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
      this.queue.push({ samples, at: 0 });
    };
  }
  process(_inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark) { this.port.postMessage({ played: head.mark }); this.queue.shift(); continue; }
      const n = Math.min(out.length - i, head.samples.length - head.at);
      out.set(head.samples.subarray(head.at, head.at + n), i);
      head.at += n; i += n;
      if (head.at === head.samples.length) this.queue.shift();
    }
    while (this.queue.length && this.queue[0].mark) { this.port.postMessage({ played: this.queue[0].mark }); this.queue.shift(); }
    for (; i < out.length; i++) out[i] = 0;
    return true;
  }
}
registerProcessor("fd-capture", Capture);
registerProcessor("fd-player", Player);
