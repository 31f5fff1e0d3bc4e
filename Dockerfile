FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY aidraw aidraw
COPY infra infra
COPY events events
COPY command command
COPY query query
COPY projectors projectors
COPY gpu_runner gpu_runner
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["aidraw", "api"]
