// Microphone capture -> 16 kHz mono Int16 frames of FRAME_SAMPLES (100 ms).
// getUserMedia + AudioWorklet (ScriptProcessor where AudioWorklet is missing); the context
// runs at the device's rate (often 48 kHz) and we downsample here, averaging the input
// samples that fall in each output sample (a box filter, enough against aliasing for speech).

export const TARGET_RATE = 16000;
export const FRAME_SAMPLES = 1600;

export class Downsampler {
  constructor(inputRate, onFrame) {
    this.step = inputRate / TARGET_RATE;
    this.onFrame = onFrame;
    this.position = 0; // input samples consumed in the current output sample
    this.sum = 0;
    this.count = 0;
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
  }

  push(samples) {
    for (let i = 0; i < samples.length; i++) {
      this.sum += samples[i];
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.position -= this.step;
        this.emit(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
      }
    }
  }

  emit(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.frame[this.filled++] = Math.round(clipped * 32767);
    if (this.filled === FRAME_SAMPLES) {
      this.onFrame(this.frame.buffer.slice(0));
      this.filled = 0;
    }
  }

  flush() {
    if (this.filled > 0) {
      this.onFrame(this.frame.buffer.slice(0, this.filled * 2));
      this.filled = 0;
    }
  }
}

// Starts the microphone; onFrame(ArrayBuffer of Int16 little-endian) every 100 ms of audio.
// Returns {stop(), sampleRate}. Throws (rejects) if the microphone is refused or missing.
export async function startCapture(onFrame) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error("Ce navigateur ne donne pas accès au micro (page non sécurisée ?)");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
             autoGainControl: false },
  });
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const downsampler = new Downsampler(context.sampleRate, onFrame);
  // a silent sink keeps the graph pulled without playing the caller back
  const sink = context.createGain();
  sink.gain.value = 0;
  sink.connect(context.destination);
  let node;
  if (context.audioWorklet) {
    await context.audioWorklet.addModule("/static/capture-worklet.js");
    node = new AudioWorkletNode(context, "capture");
    node.port.onmessage = (event) => downsampler.push(event.data);
  } else {
    node = context.createScriptProcessor(4096, 1, 1);
    node.onaudioprocess = (event) => downsampler.push(event.inputBuffer.getChannelData(0));
  }
  source.connect(node);
  node.connect(sink);
  if (context.state === "suspended") await context.resume();
  return {
    sampleRate: context.sampleRate,
    stop() {
      downsampler.flush();
      source.disconnect();
      node.disconnect();
      stream.getTracks().forEach((track) => track.stop());
      return context.close();
    },
  };
}

// Int16 samples (16 kHz mono) -> a WAV file (Blob), for the enrolment uploads.
export function wavBlob(int16Chunks) {
  const total = int16Chunks.reduce((n, chunk) => n + chunk.length, 0);
  const buffer = new ArrayBuffer(44 + total * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + total * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, TARGET_RATE, true);
  view.setUint32(28, TARGET_RATE * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, total * 2, true);
  let offset = 44;
  for (const chunk of int16Chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) view.setInt16(offset, chunk[i], true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}
