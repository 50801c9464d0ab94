import { describe, expect, it } from 'vitest';
import { outputLimitParams } from '../../src/gateway/requests';

describe('the output limit the gateway sets on a request it must bound', () => {
  it('goes under both chat names to OpenAI-compatible servers, some of which ignore max_completion_tokens', () => {
    for (const url of ['http://127.0.0.1:8000/v1', 'https://api.together.xyz/v1', 'https://openrouter.ai/api/v1', 'not a url']) {
      expect(outputLimitParams('chat.completions', url), url).toEqual(['max_completion_tokens', 'max_tokens']);
    }
  });

  it('goes under max_completion_tokens alone to hosts that refuse the pair', () => {
    for (const url of ['https://api.openai.com/v1', 'https://API.OpenAI.com/v1', 'https://mixroute.openai.azure.com/openai', 'https://ark.cn-beijing.volces.com/api/v3']) {
      expect(outputLimitParams('chat.completions', url), url).toEqual(['max_completion_tokens']);
    }
    // A look-alike host is not OpenAI.
    expect(outputLimitParams('chat.completions', 'https://api.openai.com.attacker.example/v1')).toEqual(['max_completion_tokens', 'max_tokens']);
  });

  it('keeps the one name of the other endpoints', () => {
    expect(outputLimitParams('completions', 'https://api.openai.com/v1')).toEqual(['max_tokens']);
    expect(outputLimitParams('responses', 'http://127.0.0.1:8000/v1')).toEqual(['max_output_tokens']);
  });
});
