"""Reference LLM gateway: OpenAI-compatible proxy applying the production practices of PRACTICES.md.

Entry point: `uvicorn gateway.app:create_app --factory` with GATEWAY_CONFIG naming a JSON
`harness.spec.gateway.GatewayRuntimeConfig`. See README.md for headers, metrics and settings.
"""
