"""Install speechbrain-alld: descriptive speech-quality evaluation with audio LLMs (ALLD)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="speechbrain-alld",
    version="0.1.0",
    description=(
        "SpeechBrain plugin for ALLD: audio LLMs as descriptive speech-quality evaluators"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["speechbrain_alld", "speechbrain_alld.*"]),
    # the pretrained interface's hyperparams.yaml template (speechbrain_alld.inference) and the
    # pretrained tiny Qwen2-Audio the embedded default starts from (speechbrain_alld.pretraining)
    package_data={"speechbrain_alld": ["hparams/*.yaml", "assets/*/*"]},
    install_requires=[
        # torch is pinned with torchaudio so pip resolves one consistent pair
        # (2.14.1 + 2.11.0 is what resolves on the project machines).
        "torch>=2.4,<=2.14.1",
        "torchaudio>=2.4",
        "speechbrain>=1.1.0,<1.2",
        # Qwen2-Audio's API moves between releases: pin exactly.
        "transformers==5.17.0",
        "tokenizers>=0.21",
        "peft>=0.18",
        "hyperpyyaml>=1.2",
        "sacrebleu>=2.4",
        "soundfile>=0.12",
        "numpy>=1.24",
        "scipy>=1.10",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "safetensors>=0.4",
        "accelerate>=1.0",  # device_map="auto" for large expert LLMs
    ],
    extras_require={"dev": ["pytest>=7", "ruff>=0.5"],
                    # benchmarks/scoring.py: DNSMOS on the same clips, for scale
                    "bench": ["speechmos==0.0.1.1", "onnxruntime", "librosa"]},
    entry_points={"console_scripts": ["alld-evaluate=speechbrain_alld.cli:main"]},
)
