# The demo's serving image: a mirror of `make demo` (tests/test_server_docker.py checks the mirror).
#   docker build -t reptile-demo . && docker run -p 8000:8000 reptile-demo
# Stage 1: the browser runtime (onnxruntime-web, wasm build) and Swagger UI (the API docs at /docs) from the npm
# registry, as web/package-lock.json pins them.
FROM node:22-slim AS web
WORKDIR /app/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# Stage 2: the server, with its own dependencies only (pyproject's [project] dependencies: no torch).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REPTILE_DEMO_HOST=0.0.0.0 REPTILE_DEMO_PORT=8000 \
    REPTILE_DEMO_MODEL=/app/static/models/omniglot-20w REPTILE_DEMO_MODELS_DIR=/app/static/models \
    REPTILE_DEMO_WEB_DIR=/app/web
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server/ server/
COPY bundle/ bundle/
COPY preprocessing/ preprocessing/
RUN pip install '.[brotli]' && useradd --create-home --uid 10001 demo
COPY web/ web/
COPY --from=web /app/web/node_modules/onnxruntime-web/dist/ web/node_modules/onnxruntime-web/dist/
# What /vendor/swagger-ui/ serves (server/state.py SWAGGER_ALLOWED), with the package's licence and notice.
COPY --from=web /app/web/node_modules/swagger-ui-dist/swagger-ui-bundle.js* \
    /app/web/node_modules/swagger-ui-dist/swagger-ui.css* \
    /app/web/node_modules/swagger-ui-dist/LICENSE /app/web/node_modules/swagger-ui-dist/NOTICE \
    web/node_modules/swagger-ui-dist/
COPY static/models/omniglot-20w/ static/models/omniglot-20w/
USER demo
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# The same command as the Makefile's `demo` target; host and port come from REPTILE_DEMO_HOST/PORT above.
CMD ["python", "-m", "server", "serve"]
