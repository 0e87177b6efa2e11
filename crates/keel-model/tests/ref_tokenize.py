#!/usr/bin/env python3
"""Independent reference for tests/smollm2.rs's expected token ids.

OpenAI's GPT-2 byte-level BPE algorithm (encoder.py) with llama.cpp's "smollm"
pre-tokenizer regexes (every digit split off, then GPT-2's split), reading the vocabulary
and merges straight from the GGUF file. Shares no code with Keel or the `tokenizers` crate.
Needs the `regex` module (pip install regex).

usage: ref_tokenize.py SmolLM2-135M-Instruct.Q4_1.gguf "text" ...
"""
import struct, sys

import regex

f=open(sys.argv[1],'rb')
def rd(fmt): return struct.unpack('<'+fmt,f.read(struct.calcsize('<'+fmt)))[0]
def rs(): n=rd('Q'); return f.read(n).decode('utf8')
f.read(4);rd('I');nt=rd('Q');nkv=rd('Q')
T={0:'B',1:'b',2:'H',3:'h',4:'I',5:'i',6:'f',7:'?',10:'Q',11:'q',12:'d'}
def rv(t):
    if t==8: return rs()
    if t==9:
        et=rd('I');n=rd('Q'); return [rv(et) for _ in range(n)]
    return rd(T[t])
md={}
for _ in range(nkv):
    k=rs();t=rd('I');md[k]=rv(t)
toks=md['tokenizer.ggml.tokens']; vocab={t:i for i,t in enumerate(toks)}
ranks={tuple(m.split(' ',1)):i for i,m in enumerate(md['tokenizer.ggml.merges'])}
def bytes_to_unicode():
    bs=list(range(ord("!"),ord("~")+1))+list(range(ord("¡"),ord("¬")+1))+list(range(ord("®"),ord("ÿ")+1))
    cs=bs[:];n=0
    for b in range(256):
        if b not in bs: bs.append(b);cs.append(256+n);n+=1
    return dict(zip(bs,map(chr,cs)))
b2u=bytes_to_unicode()
def bpe(word):
    w=list(word)
    while len(w)>1:
        pairs=[(ranks.get((w[i],w[i+1]),1e18),i) for i in range(len(w)-1)]
        r,i=min(pairs)
        if r==1e18: break
        a,b=w[i],w[i+1]; out=[];j=0
        while j<len(w):
            if j<len(w)-1 and w[j]==a and w[j+1]==b: out.append(a+b);j+=2
            else: out.append(w[j]);j+=1
        w=out
    return w
def split_keep(pattern,pieces):
    out=[]
    for p in pieces:
        pos=0
        for m in regex.finditer(pattern,p):
            if m.start()>pos: out.append(p[pos:m.start()])
            out.append(m.group()); pos=m.end()
        if pos<len(p): out.append(p[pos:])
    return out
def encode(text):
    specials=[t for t,ty in zip(toks,md['tokenizer.ggml.token_type']) if ty==3]
    sp=regex.compile('('+'|'.join(regex.escape(s) for s in specials)+')')
    ids=[]
    for part in sp.split(text):
        if not part: continue
        if part in specials: ids.append(vocab[part]); continue
        pieces=split_keep(r'\p{N}',[part])
        pieces=split_keep(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)",pieces)
        for p in pieces:
            ids += [vocab[t] for t in bpe(''.join(b2u[b] for b in p.encode('utf8')))]
    return ids
for s in sys.argv[2:]:
    print(repr(s), encode(s))
