#!/usr/bin/env python3
"""
Analyze benchmark results and generate metadata.

Usage:
    python tools/analyze_benchmark.py \
        --platform vllm-offline \
        --model gemma3-4b \
        --input batch_5k_offline_results.jsonl \
        --config '{"max_model_len": 4096, "gpu_memory_utilization": 0.90}'
"""

import json
import argparse
from datetime import datetime
from pathlib import Path

def analyze_results(input_file):
    """Parse JSONL and extract metrics."""
    results = []
    with open(input_file) as f:
        for line in f:
            results.append(json.loads(line))
    
    success_count = sum(1 for r in results if 'choices' in r)
    failure_count = len(results) - success_count
    
    # Calculate token stats
    prompt_tokens = [r.get('usage', {}).get('prompt_tokens', 0) for r in results if 'usage' in r]
    completion_tokens = [r.get('usage', {}).get('completion_tokens', 0) for r in results if 'usage' in r]
    
    return {
        'success_count': success_count,
        'failure_count': failure_count,
        'avg_prompt_tokens': sum(prompt_tokens) // len(prompt_tokens) if prompt_tokens else 0,
        'avg_completion_tokens': sum(completion_tokens) // len(completion_tokens) if completion_tokens else 0,
        'total_tokens': sum(prompt_tokens) + sum(completion_tokens)
    }

def save_metadata(metadata, output_dir='benchmarks/metadata'):
    """Save metadata to JSON file."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    test_id = metadata['test_id']
    output_file = Path(output_dir) / f"{test_id}.json"
    
    with open(output_file, 'w') as f:
        json.dump(metadata, f, indent=2)
    
    print(f"‚úÖ Saved metadata: {output_file}")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--platform', required=True, help='vllm-offline, vllm-serve, ollama')
    parser.add_argument('--model', required=True, help='gemma3-4b, gemma3-12b')
    parser.add_argument('--input', required=True, help='Input JSONL file')
    parser.add_argument('--config', required=True, help='JSON config string')
    parser.add_argument('--total-time', type=float, required=True, help='Total processing time (seconds)')
    parser.add_argument('--model-load-time', type=float, default=0, help='Model load time (seconds)')
    args = parser.parse_args()
    
    # Analyze results
    results = analyze_results(args.input)
    
    # Build metadata
    date = datetime.now().strftime('%Y-%m-%d')
    test_id = f"{args.platform}-{args.model}-{results['success_count']}-{date}"
    
    metadata = {
        'test_id': test_id,
        'timestamp': datetime.now().isoformat(),
        'platform': args.platform,
        'model': args.model,
        'config': json.loads(args.config),
        'test': {
            'num_requests': results['success_count'] + results['failure_count'],
            'input_file': args.input
        },
        'results': {
            **results,
            'total_time_seconds': args.total_time,
            'model_load_time_seconds': args.model_load_time,
            'throughput_tokens_per_sec': int(results['total_tokens'] / args.total_time),
            'throughput_requests_per_sec': round(results['success_count'] / args.total_time, 2)
        },
        'status': 'completed' if results['failure_count'] == 0 else 'partial'
    }
    
    # Save metadata
    save_metadata(metadata)
    
    # Print summary
    print(f"\nüìä Benchmark Summary:")
    print(f"  Platform: {args.platform}")
    print(f"  Model: {args.model}")
    print(f"  Requests: {results['success_count']}/{results['success_count'] + results['failure_count']}")
    print(f"  Throughput: {metadata['results']['throughput_tokens_per_sec']} tok/s")
    print(f"  Time: {args.total_time:.1f}s")

if __name__ == '__main__':
    main()
