"""The knowledge base: FAQ store, embeddings, FAISS index. A library; imports no other room."""
