"""The Flask JSON app of the worker benchmarks (bench/workers.py)."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="Hello, World!", items=list(range(20)), ok=True)
