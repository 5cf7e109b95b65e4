"""A small real Flask application, served end to end by the functional tests."""

from flask import Flask, Response, abort, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/")
def index():
    return "index"


@app.get("/greet")
def greet():
    return "Hello, %s!" % request.args.get("name", "nobody")


@app.post("/form")
def form():
    return jsonify(
        fields=request.form.to_dict(flat=False),
        files={name: f.read().decode("latin-1") for name, f in request.files.items()},
    )


@app.post("/json")
def json_echo():
    data = request.get_json()
    return jsonify(received=data, type=type(data).__name__), 201


@app.get("/stream")
def stream():
    n = int(request.args.get("n", "5"))

    def generate():
        for i in range(n):
            yield "line %d\n" % i

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/missing")
def missing():
    abort(404)


@app.get("/boom")
def boom():
    raise RuntimeError("flask boom")


@app.route("/methods", methods=["GET", "PUT", "DELETE"])
def methods():
    return request.method
